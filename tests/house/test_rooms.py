"""The house rules that keep the data flow readable, checked on the source (AST walks over src/hyco):

- a trainer never writes into another trainer's attributes: the HYCO trainer hands its partners their data
  and weights as arguments (`self.physical.loss_weights = ...` is what this catches);
- nothing outside hyco/data/batch.py reads a batch by position (`batch[2]`, `len(batch) > 2`): batches are
  `Batch`es, read by name;
- no module is longer than 500 lines (a room with one job).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import hyco
from hyco.data.batch import Batch

SRC = Path(hyco.__file__).parent
MAX_LINES = 500
# names that hold a batch (or its tuple form) in hyco's code
BATCHLIKE = re.compile(r"(^|_)(batch|group|validation)$")
TRAINERS = re.compile(r"trainer|synthetic|physical|hybrid|partner|learner")


def _name(node: ast.AST) -> str:
    """The last name of an expression: `self.physical` -> physical, `batch` -> batch."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def partner_writes(source: str, filename: str = "<src>") -> list[str]:
    """Assignments (also augmented, annotated, setattr) to an attribute of a trainer other than `self`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and _name(node.func) == "setattr" and node.args:
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and not (isinstance(sub.value, ast.Name) and sub.value.id == "self") \
                        and TRAINERS.search(_name(sub.value)):
                    found.append(f"{filename}:{node.lineno}: {ast.unparse(target)}")
    return found


def positional_batch_reads(source: str, filename: str = "<src>") -> list[str]:
    """`x[<int>]` and `len(x)` where x names a batch (`batch`, `group`, `validation`, `real_batch`, ...)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Subscript) and BATCHLIKE.search(_name(node.value)):
            index = node.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, int):
                found.append((node.lineno, node.col_offset, ast.unparse(node)))
        if isinstance(node, ast.Call) and _name(node.func) == "len" and node.args \
                and BATCHLIKE.search(_name(node.args[0])):
            found.append((node.lineno, node.col_offset, ast.unparse(node)))
    return [f"{filename}:{line}: {text}" for line, _, text in sorted(found)]


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_trainer_writes_into_another_trainers_attributes():
    found = [hit for path in _modules() for hit in partner_writes(path.read_text(), str(path.relative_to(SRC)))]
    assert found == []


def test_no_batch_is_read_by_position_outside_its_module():
    found = [hit for path in _modules() if path.name != "batch.py" or path.parent.name != "data"
             for hit in positional_batch_reads(path.read_text(), str(path.relative_to(SRC)))]
    assert found == []


def test_no_module_is_longer_than_500_lines():
    long = {str(p.relative_to(SRC)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_catch_what_they_are_for():
    """The checkers on the code they were written against (HYCO before the second floor)."""
    hybrid = ("class HybridTrainer:\n    def phase(self, weights):\n        self.physical.loss_weights = weights\n"
              "        self.synthetic.loss_weights += (1.0,)\n        setattr(self.physical, 'epoch', 0)\n"
              "        self.cycle = 1\n        self.cache.kind = 'x'\n")
    assert [hit.split(": ", 1)[1] for hit in partner_writes(hybrid)] == [
        "self.physical.loss_weights", "self.synthetic.loss_weights", "self.physical.?"]
    physical = ("def join(batch, group, groups):\n    mask = batch[2] if len(batch) > 2 else None\n"
                "    terms = group[3]\n    return batch.mask, batch.targets[:, 0], groups[0], len(groups)\n")
    assert [hit.split(": ", 1)[1] for hit in positional_batch_reads(physical)] == [
        "batch[2]", "len(batch)", "group[3]"]


def test_a_batch_cannot_be_read_by_position():
    batch = Batch(torch.zeros(2, 1, 4), torch.zeros(2, 3, 1, 4))
    with pytest.raises(TypeError):
        batch[0]  # noqa: B018
    with pytest.raises(TypeError):
        inputs, targets = batch
    with pytest.raises(TypeError):
        len(batch)


def test_tasks_and_modes_are_listed_once():
    """hyco.config.schema holds the one list of tasks and of training modes; everything else is keyed by it."""
    from typing import get_args

    from hyco import api, tasks
    from hyco.config.schema import TASKS, TRAIN_MODES
    from hyco.tasks.train import TRAINERS

    assert tuple(tasks.TASK_DESCRIPTIONS) == tasks.TASKS == TASKS
    assert tuple(TRAINERS) == get_args(api.Mode) == tasks.TRAIN_MODES == TRAIN_MODES
