"""One training run of `behaviorflow.lm.tuning` on the tiny model, as a separate process: what the
kill-and-resume and DDP tests start (`python tune_run.py BASE OUT JSON_SETTINGS [slow]`, or under
torchrun). Prints the report as JSON on its last line (rank 0 only)."""

from __future__ import annotations

import json
import os
import sys
import time

from transformers import AutoTokenizer, TrainerCallback

from behaviorflow.lm.tuning import TuningSettings, encode_completion, tune

WEEK = "Monday, 08:00, z1, music\nTuesday, 09:30, z2, news"


def examples(tok, n: int = 16):
    """Answers of different lengths, so batches carry different token counts (the DDP case that
    needs the loss normalised by the global token count)."""
    out = []
    for i in range(n):
        answer = "\n".join([WEEK] * (1 + i % 3))
        out.append(encode_completion(tok, [{"role": "user", "content": f"Generate week {i} of user u{i % 5}."}],
                                     answer, 512))
    return out


class Slow(TrainerCallback):
    """Makes each step take a while, so a test can kill the process between checkpoints."""

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.4)


def main(base: str, out: str, settings_json: str, slow: bool = False) -> None:
    tok = AutoTokenizer.from_pretrained(base)
    settings = TuningSettings(**json.loads(settings_json))
    report = tune(base, examples(tok), out, settings, device="cpu", threads=1, callbacks=[Slow()] if slow else None)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "slow")
