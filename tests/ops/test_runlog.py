"""Run records: statuses and kinds are enums in code and their plain strings on disk."""

from __future__ import annotations

import json

from fer_stream.ops import layout, runlog


def test_a_record_on_disk_holds_the_plain_strings_of_its_enums(tmp_path):
    record = runlog.new_record(runlog.RunKind.FORGET, tmp_path)
    text = runlog.save(tmp_path, record).read_text(encoding="utf-8")
    assert '"kind": "forget"' in text and '"status": "running"' in text
    back = json.loads(text)
    assert back["status"] == runlog.RunStatus.RUNNING and type(back["status"]) is str
    runlog.mark_killed(tmp_path, {"run_id": record["run_id"]}, "by-test")
    back = json.loads(layout.run_record(tmp_path, record["run_id"]).read_text(encoding="utf-8"))
    assert back["status"] == "killed"
