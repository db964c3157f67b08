"""Lesson 00, start here: self-checks and worked solutions about the mode switch."""

from __future__ import annotations

from mmlab.exercises import Exercise, Verdict, solved, verdict
from mmlab.mode import Setup

_OFFLINE_SWITCHES = {"MMLAB_MODE=offline", "MMLAB_OFFLINE=1", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"}


def check_forced_offline(result) -> Verdict:
    """Exercise 1: `result` is what `mmlab.setup(...)` returned when asked, by argument, for offline mode."""
    if not isinstance(result, Setup):
        return verdict(False, "", f"Pass the value mmlab.setup(...) returns (a Setup), not {type(result).__name__}.")
    if result.mode != "offline":
        return verdict(False, "", f"This setup chose {result.mode!r} mode: give setup() the mode as its first argument.")
    if not result.reason.startswith("asked for by mmlab.setup"):
        return verdict(False, "", f"Offline, but because {result.reason}: force it with the argument instead.")
    return verdict(True, "The argument wins over the environment and skips the Hub probe: no waiting, no network.", "")


def check_switch(text: str) -> Verdict:
    """Exercise 2: an environment variable (as NAME=value) that starts every notebook offline without code changes."""
    answer = text.replace(" ", "")
    name = answer.split("=")[0].upper()
    if answer.upper() in {s.upper() for s in _OFFLINE_SWITCHES}:
        return verdict(True, f"{answer} is read by mmlab.setup(); set it before starting JupyterLab "
                             "(`MMLAB_MODE=offline ./workbook lab`, the default of ./workbook lab anyway).", "")
    if name in {s.split("=")[0] for s in _OFFLINE_SWITCHES}:
        return verdict(False, "", f"Right variable, wrong value: {name} takes "
                       f"{'offline' if name == 'MMLAB_MODE' else '1'}.")
    return verdict(False, "", "Answer as NAME=value, with a variable from the section 'The mode switch' of this notebook.")


def check_gpu_dtype(dtype) -> Verdict:
    """Exercise 3: the dtype mmlab.setup() picks on a CUDA GPU."""
    import torch

    why = {
        torch.float32: "float32 is the CPU choice: on a GPU it doubles the memory, and BLIP-2's 3.7 B parameters "
                       "in float32 (about 15 GB) do not fit Colab's 15 GB T4.",
        torch.bfloat16: "bfloat16 would halve memory too, but Colab's T4 has no fast bfloat16 units.",
    }.get(dtype, "Pass a torch dtype such as torch.float32; the section 'The mode switch' says which one a GPU gets.")
    return verdict(dtype == torch.float16, "float16: half the memory of float32, and fast on every CUDA GPU. "
                   "BLIP-2 then needs about 7.5 GB.", why)


EXERCISES = {
    1: Exercise(solved('forced = mmlab.setup("offline")'), "lesson00.check_forced_offline(forced)"),
    2: Exercise(solved('switch = "MMLAB_MODE=offline"'), "lesson00.check_switch(switch)",
                "In a terminal, before starting Jupyter: export MMLAB_MODE=offline (MMLAB_OFFLINE=1 and "
                "HF_HUB_OFFLINE=1 work too; in a notebook: os.environ['MMLAB_MODE'] = 'offline' before mmlab.setup())"),
    3: Exercise(solved("dtype = torch.float16", given="import torch"), "lesson00.check_gpu_dtype(dtype)",
                "2 bytes per parameter: 3.7 B parameters -> about 7.5 GB, which fits a 15 GB T4"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
