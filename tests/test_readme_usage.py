"""README, "Use reinmax in your own model": the subsection on binary variables, layers,
schedules, K draws and old runs runs as written (its code blocks, in order, in one namespace)."""
import math
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
SUBSECTION = "### Binary variables, layers, temperature schedules, K draws, old runs"


def test_practitioner_subsection_runs():
    text = README.read_text()
    assert SUBSECTION in text
    body = text.split(SUBSECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    assert len(blocks) == 4
    for word in ("reinmax.estimators.bernoulli", "reinmax.estimators.nn.StraightThrough", "schedules.gdas_linear",
                 "expand(K", "official_sample"):
        assert word in body, word
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["logits"].grad.shape == (32, 10, 4)
    assert namespace["layer"].t == 3 and namespace["tau"] == math.exp(-0.1)
    assert namespace["a"].grad is not None
