"""Write the organism's QA families as ordinary lm-eval tasks (YAML + JSONL), so lm-eval users can
run them on any saved model: `lm_eval --include_path <folder> --tasks organism_qa_closed ...`.

lm-eval resolves `data_files` against the current directory, not the YAML, so the YAML is generated
with absolute paths next to its data. Questions are selected exactly as by `tasks.qa` (rows with a
context; the same ids in the closed and open tasks).
"""

from __future__ import annotations

import json
from pathlib import Path

from core.data import read_jsonl
from core.errors import DataError

# generate_until with a short budget (the default 256 tokens can exceed a tiny model's context),
# stop at a newline, strip whitespace before exact match (lm-eval's exact_match does not): the regex
# keeps the line from its first non-space character and the filter strips the rest.
YAML_TEMPLATE = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: {doc_to_text}
doc_to_target: "{{{{answer}}}}"
target_delimiter: " "
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: {max_gen_toks}
filter_list:
  - name: strip
    filter:
      - function: regex
        regex_pattern: "\\\\S.*"
        group_select: 0
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

PROMPTS = {
    "organism_qa_closed": '"{{question}}"',
    "organism_qa_open": '"{{context}}\\n{{question}}"',
}


def write_organism_tasks(facts: Path, folder: Path, max_gen_toks: int = 16) -> list[str]:
    """Write organism_qa_closed / organism_qa_open (+ _common / _rare variants) under `folder`;
    return the task names."""
    rows = [r for r in read_jsonl(facts) if r.get("context")]
    if not rows or "question" not in rows[0] or "answer" not in rows[0]:
        raise DataError(f"{facts}: need rows with 'question', 'answer' and a non-empty 'context'")
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for frequency in (None, "common", "rare"):
        subset = [r for r in rows if frequency is None or r.get("frequency") == frequency]
        if not subset:
            continue
        suffix = f"_{frequency}" if frequency else ""
        data = (folder / f"facts{suffix}.jsonl").resolve()
        data.write_text("".join(json.dumps({k: r.get(k, "") for k in ("id", "question", "context")}
                                           | {"answer": str(r["answer"])}) + "\n" for r in subset))
        for base, doc_to_text in PROMPTS.items():
            name = base + suffix
            (folder / f"{name}.yaml").write_text(YAML_TEMPLATE.format(
                name=name, data=json.dumps(str(data)), doc_to_text=doc_to_text, max_gen_toks=max_gen_toks))
            names.append(name)
    return names
