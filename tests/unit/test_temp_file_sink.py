"""TempFileSink: meta and fragments reach the file unbuffered; ``head`` holds the start."""

from __future__ import annotations

from pathlib import Path

from pacsbox.services.storage_scp import HEAD_BYTES, TempFileSink, create_temp


def test_meta_and_fragments_are_in_the_file_and_the_head_is_their_start(tmp_path):
    meta = b"M" * 132
    fragments = [bytes([n]) * size for n, size in enumerate((1000, HEAD_BYTES, 5000), 1)]
    sink = TempFileSink(create_temp(tmp_path), meta)
    for fragment in fragments:
        sink.write(memoryview(fragment))
    sink.close()
    data = b"".join(fragments)
    assert Path(sink.path).read_bytes() == meta + data
    assert bytes(sink.head) == data[:HEAD_BYTES]
    assert (sink.length, sink.tail, sink.error) == (len(data), data[-8:], None)


def test_a_first_fragment_that_holds_the_header_is_kept_without_a_copy(tmp_path):
    received = bytes(range(256)) * 400  # as recv returned it: nothing will change it
    sink = TempFileSink(create_temp(tmp_path), b"meta")
    sink.write(memoryview(received)[10:])
    sink.write(memoryview(b"tail"))
    sink.close()
    assert isinstance(sink.head, memoryview) and sink.head.obj is received
    assert Path(sink.path).read_bytes() == b"meta" + received[10:] + b"tail"


def test_an_empty_data_set_leaves_the_meta_information_alone(tmp_path):
    sink = TempFileSink(create_temp(tmp_path), b"meta")
    sink.close()
    sink.close()
    assert Path(sink.path).read_bytes() == b"meta" and sink.length == 0
