#!/usr/bin/env bash
# Installs the interop test peers: DCMTK, Orthanc and PostgreSQL (Debian/Ubuntu packages).
# Called by `make test` and `make bench` through `make peers`.
#
# Idempotent: when everything is present it only probes (command -v, pg_isready, one psql
# query) and returns in well under a second. When something is missing it runs
# `apt-get update` once and installs what is missing. Services installed here are not left
# running (Orthanc would otherwise occupy ports 4242/8042); the tests start their own.
#
# Environment:
#   PG_HOST / PG_PORT   where PostgreSQL is expected (default 127.0.0.1:5432)
#   PG_TEST_DB          database the tests use (default pacsbox_test)
#   PG_CLUSTER          Debian cluster name to start/create when none answers (default main)
set -euo pipefail

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_TEST_DB="${PG_TEST_DB:-pacsbox_test}"
PG_CLUSTER="${PG_CLUSTER:-main}"
DCMTK_TOOLS=(echoscu storescu storescp dcmqrscp dcmsend dcmcjpeg findscu movescu getscu)

# /usr/sbin is not on every non-root PATH, and Orthanc lives there.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# command -v alone also reports a non-executable file of that name
have() {
    local p
    p="$(command -v "$1" 2>/dev/null)" && [ -x "$p" ]
}
say() { printf 'peers: %s\n' "$*"; }
die() {
    printf 'peers: ERROR: %s\n' "$*" >&2
    exit 1
}

# --- privileges -----------------------------------------------------------------------------
SUDO=()
need_root() {
    # $1: what we are about to do (for the error message)
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif have sudo; then
        SUDO=(sudo)
    else
        die "$1 needs root and sudo is not available. As root, run:
    apt-get update && apt-get install -y --no-install-recommends ${MISSING_PKGS[*]:-dcmtk orthanc postgresql}
then re-run 'make peers'."
    fi
}

# --- apt (at most one update, one install) --------------------------------------------------
OUR_POLICY_RC=""
cleanup() {
    if [ -n "$OUR_POLICY_RC" ]; then
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d || true
    fi
}
trap cleanup EXIT

apt_install() {
    have apt-get \
        || die "apt-get not found; install these packages with your package manager: $*"
    need_root "installing $*"
    # Keep package maintainer scripts from starting services (Orthanc's postinst starts it
    # through invoke-rc.d; PostgreSQL's starts the new cluster). A policy-rc.d that already
    # exists (Docker images ship one that denies everything) is left alone.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, written by pacsbox scripts/install-peers.sh\nexit 101\n' \
            | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SUDO[@]}" chmod 0755 /usr/sbin/policy-rc.d
        OUR_POLICY_RC=1
    fi
    say "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    say "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" >/dev/null
    cleanup
    OUR_POLICY_RC=""
    hash -r
}

# --- probe ----------------------------------------------------------------------------------
MISSING_PKGS=()

missing_dcmtk=()
for t in "${DCMTK_TOOLS[@]}"; do
    have "$t" || missing_dcmtk+=("$t")
done
if [ "${#missing_dcmtk[@]}" -gt 0 ]; then
    MISSING_PKGS+=(dcmtk)
fi

have_orthanc=1
have Orthanc || have_orthanc=0
if [ "$have_orthanc" -eq 0 ]; then
    MISSING_PKGS+=(orthanc)
fi

pg_ready() { have pg_isready && pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
pg_running=0
if pg_ready; then
    pg_running=1
elif ! have pg_ctlcluster || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    MISSING_PKGS+=(postgresql)
fi
if [ "$pg_running" -eq 1 ] && ! have psql; then
    MISSING_PKGS+=(postgresql-client) # to create the test database
fi

# --- install --------------------------------------------------------------------------------
clusters_before=""
if [ "$pg_running" -eq 0 ] && have pg_lsclusters; then
    clusters_before="$(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}')"
fi
if [ "${#MISSING_PKGS[@]}" -gt 0 ]; then
    apt_install "${MISSING_PKGS[@]}"
fi

# --- DCMTK ----------------------------------------------------------------------------------
for t in "${DCMTK_TOOLS[@]}"; do
    have "$t" || die "DCMTK tool '$t' still missing after installing dcmtk"
done
dcmtk_version="$(echoscu --version 2>/dev/null | awk '/dcmtk/ && !v {v = $3} END {print v}')"
if [ "${#missing_dcmtk[@]}" -gt 0 ]; then
    say "DCMTK: installed (dcmtk ${dcmtk_version:-?}, $(command -v echoscu))"
else
    say "DCMTK: found (dcmtk ${dcmtk_version:-?}, $(command -v echoscu))"
fi

# --- Orthanc --------------------------------------------------------------------------------
orthanc_bin="$(command -v Orthanc 2>/dev/null)" || die "Orthanc still missing after installing orthanc"
orthanc_version="$("$orthanc_bin" --version 2>/dev/null | awk 'NR == 1 {v = $2} END {print v}')"
if [ "$have_orthanc" -eq 0 ]; then
    # Should policy-rc.d not have been honoured, do not leave the packaged service running
    # on 4242/8042: the tests start their own Orthanc on free ports.
    if [ -d /run/systemd/system ] && have systemctl; then
        "${SUDO[@]}" systemctl stop orthanc.service >/dev/null 2>&1 || true
        "${SUDO[@]}" systemctl disable orthanc.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/orthanc ] && "${SUDO[@]}" /etc/init.d/orthanc status >/dev/null 2>&1; then
        "${SUDO[@]}" /etc/init.d/orthanc stop >/dev/null 2>&1 || true
    fi
    say "Orthanc: installed (Orthanc ${orthanc_version:-?}, $orthanc_bin; packaged service not running)"
else
    say "Orthanc: found (Orthanc ${orthanc_version:-?}, $orthanc_bin)"
fi

# --- PostgreSQL -----------------------------------------------------------------------------
if [ "$pg_running" -eq 1 ]; then
    pg_state="found running at $PG_HOST:$PG_PORT"
else
    need_root "starting PostgreSQL"
    pg_version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$pg_version" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    created=0
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -x "$pg_version/$PG_CLUSTER" >/dev/null; then
        say "PostgreSQL: creating cluster $pg_version/$PG_CLUSTER"
        "${SUDO[@]}" pg_createcluster --port "$PG_PORT" "$pg_version" "$PG_CLUSTER" >/dev/null
        created=1
    elif ! printf '%s\n' "$clusters_before" | grep -x "$pg_version/$PG_CLUSTER" >/dev/null; then
        created=1 # created by the postgresql package we just installed
    fi
    if [ "$created" -eq 1 ]; then
        # Local TCP connections as any user without a password (a test database only).
        hba="/etc/postgresql/$pg_version/$PG_CLUSTER/pg_hba.conf"
        if ! "${SUDO[@]}" grep -q '^# pacsbox test peers' "$hba"; then
            {
                printf '# pacsbox test peers: trust local TCP connections\n'
                printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
                "${SUDO[@]}" cat "$hba"
            } >"/tmp/pacsbox-pg_hba.$$"
            "${SUDO[@]}" cp "/tmp/pacsbox-pg_hba.$$" "$hba"
            rm -f "/tmp/pacsbox-pg_hba.$$"
        fi
    fi
    if pg_lsclusters -h 2>/dev/null | awk -v v="$pg_version" -v c="$PG_CLUSTER" '$1 == v && $2 == c {print $4}' | grep -x online >/dev/null; then
        # e.g. started by the package's postinst: pick up the pg_hba.conf change
        "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$PG_CLUSTER" reload
    else
        "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$PG_CLUSTER" start
    fi
    for _ in $(seq 1 100); do # up to 10 s
        pg_ready && break
        sleep 0.1
    done
    pg_ready || die "PostgreSQL $pg_version/$PG_CLUSTER did not become ready at $PG_HOST:$PG_PORT
(see /var/log/postgresql/postgresql-$pg_version-$PG_CLUSTER.log)"
    pg_state="cluster $pg_version/$PG_CLUSTER started at $PG_HOST:$PG_PORT"
    if [ "$created" -eq 1 ]; then
        pg_state="cluster $pg_version/$PG_CLUSTER created (trust for local TCP) and started at $PG_HOST:$PG_PORT"
    fi
    case " ${MISSING_PKGS[*]:-} " in
        *" postgresql "*) pg_state="installed postgresql $pg_version, $pg_state" ;;
    esac
fi

psql_pg() { psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"; }
if ! has_db="$(psql_pg -tA -c "SELECT 1 FROM pg_database WHERE datname = '$PG_TEST_DB'" 2>&1)"; then
    die "cannot connect to PostgreSQL at $PG_HOST:$PG_PORT as user postgres without a password:
$has_db
Allow it in pg_hba.conf, e.g. 'host all all 127.0.0.1/32 trust', then reload PostgreSQL."
fi
if [ "$has_db" = "1" ]; then
    say "PostgreSQL: $pg_state, database $PG_TEST_DB exists"
else
    if ! out="$(psql_pg -c "CREATE DATABASE $PG_TEST_DB" 2>&1)"; then
        case "$out" in
            *"already exists"*) ;; # created concurrently: fine
            *) die "could not create database $PG_TEST_DB: $out" ;;
        esac
    fi
    say "PostgreSQL: $pg_state, database $PG_TEST_DB created"
fi
