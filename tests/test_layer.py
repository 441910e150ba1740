"""The shared experiment layer: one error format, seeds, method options checked by the registry,
fingerprints, atomic checkpoints and resuming a finished record."""
import pytest
import torch

import reinmax
from reinmax.experiments import layer


def test_one_error_format_names_owner_parameter_value_and_what_is_allowed():
    with pytest.raises(ValueError) as error:
        layer.positive_int("SomeConfig", "epochs", 0)
    assert str(error.value) == "SomeConfig: epochs must be an integer >= 1; got epochs=0"
    with pytest.raises(ValueError, match=r"SomeConfig: seeds must be a non-empty list of distinct "
                                         r"non-negative integers .*-y.*; got seeds='\['"):
        layer.seeds("SomeConfig", "[")


@pytest.mark.parametrize("value", [[], [0, 0], [-1], [1.5], [True], 3, None, (0, "1")])
def test_seeds_are_a_list_of_distinct_non_negative_integers(value):
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        layer.seeds("C", value)


def test_seeds_come_back_as_a_list():
    assert layer.seeds("C", (3, 0, 5)) == [3, 0, 5]


def test_names_are_matched_case_insensitively_and_spelled_as_allowed():
    assert layer.names("C", "methods", ["reinmax", "st"], ["ST", "ReinMax"]) == ["ReinMax", "ST"]
    with pytest.raises(ValueError, match="without repeated names"):
        layer.names("C", "methods", ["ST", "st"], ["ST"])


def test_method_options_are_checked_by_the_registry_and_merged_over_defaults():
    merged = layer.method_options("C", {"GR-MCK": {"K": 10}, "RLOO": {"num_samples": 4}},
                                  {"GR-MCK": {"K": 1000}})
    assert merged == {"GR-MCK": {"K": 10}, "RLOO": {"num_samples": 4}}
    for bad in ({"GR-MCK": {"K": 0}}, {"GR-MCK": {"k": 3}}, {"RLOO": {"num_samples": 1}},
                {"ST": {"K": 3}}):
        with pytest.raises(ValueError, match=r"C: method_options\[.*\] must be options that"):
            layer.method_options("C", bad)
    with pytest.raises(ValueError, match="'Nope' is not one"):
        layer.method_options("C", {"Nope": {}})
    assert set(layer.method_families()) == set(reinmax.ESTIMATORS) | set(reinmax.SCORE_ESTIMATORS)


def test_fingerprint_is_stable_and_sees_every_field():
    a = layer.fingerprint({"p": 2.0, "seeds": [0, 1], "options": {"K": 3}})
    assert a == layer.fingerprint({"options": {"K": 3}, "seeds": (0, 1), "p": 2.0})
    assert a != layer.fingerprint({"p": 2.0, "seeds": [0, 1], "options": {"K": 4}})
    assert a == "%s" % a and len(a) == 20


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    layer.save_checkpoint(path, {"fingerprint": "f", "device_type": "cpu", "epoch": 1})

    def broken(obj, where):
        open(where, "wb").write(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        layer.save_checkpoint(path, {"fingerprint": "f", "device_type": "cpu", "epoch": 2})
    monkeypatch.undo()
    assert layer.load_checkpoint(path, "f", torch.device("cpu"))["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match="belongs to other settings"):
        layer.load_checkpoint(path, "g", torch.device("cpu"))
    assert layer.load_checkpoint(tmp_path / "none.ckpt", "f", torch.device("cpu")) is None


def test_a_finished_record_is_found_by_fingerprint_and_device(tmp_path):
    path = tmp_path / "r.json"
    assert layer.finished_record(path, "f", "auto") is None
    record = layer.record("toy", {"a": 1}, [{"method": "ST"}], 1.5, {"device": "cuda"},
                          fingerprint="f")
    assert list(record) == ["experiment", "config", "runs", "wall_s", "provenance", "fingerprint"]
    layer.write_json(path, record)
    assert layer.finished_record(path, "f", "auto") == record            # another device: fine
    with pytest.raises(ValueError, match="trained on cuda"):
        layer.finished_record(path, "f", "cpu")
    with pytest.raises(ValueError, match="a: found 1, now 2"):
        layer.finished_record(path, "g", "auto", fields={"a": 2})


def test_auto_picks_cuda_only_when_present():
    assert layer.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert layer.resolve_device("cpu") == torch.device("cpu")
