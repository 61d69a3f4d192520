"""Target selection by regex, names, types, and exclude; clear errors."""
import pytest
from torch import nn

from adaptkit import TargetSelectionError, attach_adapter
from adaptkit.core import select_targets
from models import CondBatchNorm2d, tiny_cond_generator


@pytest.mark.parametrize(
    "targets, expected",
    [
        (r"block1\.bn\d", ["block1.bn1", "block1.bn2"]),  # regex: full match on the path
        (r"(block2\.)?bn\d?", ["block2.bn1", "block2.bn2"]),  # the output norm "bn" is dropped
        (["bn1"], ["block1.bn1", "block2.bn1"]),  # list: .suffix match
        (["block2.bn2", "out"], ["block2.bn2", "out"]),  # naming the output layer includes it
        (CondBatchNorm2d, ["block1.bn1", "block1.bn2", "block2.bn1", "block2.bn2"]),
        ([nn.BatchNorm2d], ["block1.bn1.bn", "block1.bn2.bn", "block2.bn1.bn", "block2.bn2.bn"]),
    ],
)
def test_selection_forms(targets, expected):
    model = tiny_cond_generator()
    assert attach_adapter(model, "bsa", targets=targets).targets == expected


def test_exclude():
    model = tiny_cond_generator()
    handle = attach_adapter(model, "bsa", exclude=r"block2\..*")
    assert handle.targets == ["block1.bn1", "block1.bn2"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"targets": "nothing.*"}, "matched no layer of TinyCondGenerator"),
        ({"targets": ["nope"]}, "matched no layer"),
        ({"exclude": ".*"}, "after exclude"),
        ({"targets": "("}, "not a valid regular expression"),
        ({"targets": 3}, "must be a regex string"),
        ({"targets": []}, "must be a regex string"),
    ],
)
def test_bad_selection_is_an_error_and_model_untouched(kwargs, message):
    model = tiny_cond_generator()
    with pytest.raises(TargetSelectionError, match=message):
        attach_adapter(model, "bsa", **kwargs)
    assert all(p.requires_grad for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_option_is_an_error():
    model = tiny_cond_generator()
    with pytest.raises(adaptkit_error(), match="unknown option"):
        attach_adapter(model, "bsa", gama=2)


def adaptkit_error():
    from adaptkit import AdaptkitError

    return AdaptkitError


def test_select_targets_keeps_module_order():
    model = tiny_cond_generator()
    assert select_targets(model, [], ["block2.bn1", "block1.bn1"]) == ["block1.bn1", "block2.bn1"]
