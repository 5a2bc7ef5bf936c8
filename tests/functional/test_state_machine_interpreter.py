"""The Step Functions walker itself (``tests/support/sfn_walker.py``): paths, intrinsics, choice rules.

The state machine's own tests run on it (``test_state_machine_definition.py``,
``test_state_machine_contract.py``), so the parts of the language they rely on are checked here
against what the Amazon States Language specifies.
"""

from __future__ import annotations

import pytest

from tests.support.sfn_walker import MISSING, StatesError, evaluate_intrinsic, evaluate_rule, get_path, set_path


def test_paths_read_and_write_like_step_functions() -> None:
    data = {"a": {"b": [1, {"c": "x"}]}, "s": "it's"}
    assert get_path(data, "$.a.b[1].c") == "x"
    assert get_path(data, "$.nope") is MISSING
    assert set_path(data, "$.a.d", 5)["a"] == {"b": [1, {"c": "x"}], "d": 5}
    assert set_path(data, "$", 5) == 5 and set_path(data, None, 5) == data


def test_intrinsic_functions() -> None:
    data = {"a": {"b": [1, {"c": "x"}]}, "s": "it's"}
    assert evaluate_intrinsic("States.Format('{} \\{\\} \\'q\\' {}', $.a.b[1].c, $.a.b[0])", data) == "x {} 'q' 1"
    merged = evaluate_intrinsic("States.JsonMerge($.a, States.StringToJson('\\{\"z\": 1\\}'), false)", data)
    assert merged == {"b": [1, {"c": "x"}], "z": 1}
    assert evaluate_intrinsic("States.StringToJson('300')", {}) == 300
    assert evaluate_intrinsic("States.JsonToString($.a)", data) == '{"b":[1,{"c":"x"}]}'
    assert evaluate_intrinsic("States.JsonMerge($.a, $.a, false)", data) == data["a"]
    with pytest.raises(StatesError, match=r"States\.Runtime"):
        evaluate_intrinsic("States.Format('{}', $.missing)", data)


def test_choice_rules() -> None:
    data = {"s": "it's", "id": "batch_abc", "other": "file-abc"}
    assert evaluate_rule({"Variable": "$.id", "StringMatches": "batch_*"}, data)
    assert not evaluate_rule({"Variable": "$.other", "StringMatches": "batch_*"}, data)
    assert evaluate_rule(
        {"And": [{"Variable": "$.s", "IsString": True}, {"Variable": "$.s", "StringEquals": "it's"}]}, data
    )
    with pytest.raises(StatesError):
        evaluate_rule({"Variable": "$.missing", "StringEquals": "x"}, data)
