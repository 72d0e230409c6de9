"""An empty parameter value is refused, the same way for every parameter (issue 24, item 5):
`video=` selected every lecture (a prefix match of '') while `course=` selected none."""

from __future__ import annotations

import pytest

from fer_stream import reports
from fer_stream.cli import exits


@pytest.mark.parametrize("key", list(reports.PARAMS))
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_value_is_refused_for_every_parameter(con, key, value):
    name = next(n for n in reports.report_names() if key in reports.report_params(n))
    with pytest.raises(reports.ReportError, match=f"parameter {key}=.* is empty: leave it out"):
        reports.run_report(con, name, {key: value})
    with pytest.raises(reports.ReportError, match="is empty"):
        reports.html_page(con, {key: value})


def test_cli_empty_param_is_usage(fer_stream, data, capsys):
    for pair in ("video=", "course=", "student= "):
        assert fer_stream("report", "student_attention", "--data", data, "--param", pair) == exits.USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is empty" in err, pair
    # a value given still selects; leaving it out still means all
    assert fer_stream("report", "student_attention", "--data", data, "--format", "csv") == exits.OK
    assert len(capsys.readouterr().out.splitlines()) == 1 + 8
