"""Below PATIENT level, the patient's name, birth date and sex are each study's own (schema
0003): studies that share a patients row (no Patient ID, as many anonymized studies have)
answer with the names their instances give, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from pydicom.dataset import Dataset

from pacsbox.archive import Index, migrations
from pacsbox.archive.query import Query, QueryOptions
from pacsbox.services.qr_models import Model
from tests.archive.headers import EXPLICIT_LE, ct_header, new_uid
from tests.archive.test_index import Database, db  # noqa: F401 - the fixture


def add(index: Index, study: str, name: str, **attributes) -> str:
    uid = new_uid()
    header = ct_header(study, study + ".1", uid, PatientID="", PatientName=name, **attributes)
    index.add(header, path=uid, size=1, transfer_syntax=EXPLICIT_LE)
    return uid


def find(index: Index, level: str, model=Model.STUDY_ROOT, **keys) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    with index.engine.connect() as conn:
        return list(Query(model, identifier, QueryOptions("PACSBOX")).run(conn))


def names(found: list[Dataset]) -> dict[str, str]:
    return {str(ds.StudyInstanceUID): str(ds.PatientName) for ds in found}


def test_studies_without_a_patient_id_answer_with_their_own_names(db: Database):  # noqa: F811
    one, two = new_uid()[:50] + ".1", new_uid()[:50] + ".2"
    with db.open() as index:
        add(index, one, "Last Name^First Name", PatientSex="F", PatientBirthDate="19700101")
        add(index, two, "Anonymized", PatientSex="M")
        found = find(index, "STUDY", StudyInstanceUID="", PatientName="", PatientSex="",
                     PatientBirthDate="")  # fmt: skip
        assert names(found) == {one: "Last Name^First Name", two: "Anonymized"}
        by_study = {str(ds.StudyInstanceUID): ds for ds in found}
        assert (by_study[one].PatientSex, by_study[one].PatientBirthDate) == ("F", "19700101")
        assert by_study[two].PatientSex == "M" and not by_study[two].PatientBirthDate
        assert names(find(index, "STUDY", PatientName="last name*")) == {
            one: "Last Name^First Name"
        }
        assert names(find(index, "STUDY", PatientSex="M", PatientName="")) == {two: "Anonymized"}
        images = find(index, "IMAGE", StudyInstanceUID=two, SeriesInstanceUID=two + ".1",
                      PatientName="Anonymized")  # fmt: skip
        assert len(images) == 1
        # one patient: no Patient ID names nobody apart; its row has the last name stored
        patients = find(index, "PATIENT", Model.PATIENT_ROOT, PatientID="", PatientName="")
        assert [str(p.PatientName) for p in patients] == ["Anonymized"]


def test_an_index_of_0002_gives_each_study_its_patients_values(db: Database):  # noqa: F811
    study = new_uid()[:50]
    with db.open() as index:
        add(index, study, "Doe^Jane", PatientSex="F")
        with index.engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "0002")
    with db.open() as index:  # upgraded when opened
        assert index.schema_revision() == migrations.head_revision()
        found = find(index, "STUDY", PatientName="DOE*", PatientSex="")
        assert [(str(ds.PatientName), ds.PatientSex) for ds in found] == [("Doe^Jane", "F")]
