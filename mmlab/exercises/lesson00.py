"""Lesson 00, start here: self-checks and worked solutions about the mode switch."""

from __future__ import annotations

from mmlab.exercises import Exercise, Verdict, solved, verdict
from mmlab.mode import Setup


def check_forced_offline(result) -> Verdict:
    """Exercise 1: `result` is what `mmlab.setup(...)` returned when asked, by argument, for offline mode."""
    if not isinstance(result, Setup):
        return verdict(False, "", f"Pass the value mmlab.setup(...) returns (a Setup), not {type(result).__name__}.")
    if result.mode != "offline":
        return verdict(False, "", f"This setup chose {result.mode!r} mode: give setup() the mode as its first argument.")
    if not result.reason.startswith("asked for by mmlab.setup"):
        return verdict(False, "", f"Offline, but because {result.reason}: force it with the argument instead.")
    return verdict(True, "The argument wins over the environment and skips the Hub probe: no waiting, no network.", "")


def mode_for(environment: dict[str, str]) -> str:
    """The mode `mmlab.setup()` chooses, with no argument, in `environment` (the Hub probe is never reached here)."""
    from unittest import mock

    from mmlab import mode

    with mock.patch.dict("os.environ", environment, clear=True), \
            mock.patch.object(mode, "probe_hub", lambda **_: (False, "no Hub probe in this exercise")):
        return mode._choose_mode(None, timeout=0)[0]


PRECEDENCE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "MMLAB_MODE": "hub"}


def check_precedence(prediction: str) -> Verdict:
    """Exercise 2: with HF_HUB_OFFLINE=1 and MMLAB_MODE=hub both set, which mode does mmlab.setup() choose?"""
    answer = str(prediction).strip().strip("'\"").lower()
    if answer not in {"hub", "offline"}:
        return verdict(False, "", 'Predict "hub" or "offline".')
    want = mode_for(PRECEDENCE_ENVIRONMENT)
    return verdict(answer == want, f"{want!r}: mmlab.setup() reads MMLAB_MODE before the offline variables, so the "
                   "mmlab-specific setting wins over the general Hugging Face one. (In hub mode HF_HUB_OFFLINE=1 still "
                   "stops huggingface_hub from downloading: unset it.)",
                   "Both variables are read, but not at the same moment: which one does the order in the section "
                   "'The mode switch' put first?")


BLIP2_PARAMETERS = 3_744_761_856  # Salesforce/blip2-opt-2.7b, as lesson 03 counts


def check_gpu_memory(gigabytes: float) -> Verdict:
    """Exercise 3: the weights of BLIP-2 in gigabytes, in the dtype mmlab.setup() picks on a CUDA GPU."""
    try:
        gb = float(gigabytes)
    except (TypeError, ValueError):
        return verdict(False, "", "Give a number of gigabytes, such as 4.2.")
    want = BLIP2_PARAMETERS * 2 / 1e9  # float16: 2 bytes a parameter
    if abs(gb - want) <= 0.5:
        return verdict(True, f"About {want:.1f} GB: float16 takes 2 bytes a parameter. That fits a 15 GB T4 with room "
                       "for the activations; float32 would not.", "")
    if abs(gb - 2 * want) <= 1:
        hint = "That is 4 bytes a parameter, float32, the CPU's choice. Which dtype does a CUDA GPU get?"
    elif abs(gb - want / 2) <= 0.5:
        hint = "That is 1 byte a parameter (8-bit quantization). Which dtype does setup() choose by itself?"
    elif gb < 0.1 * want or gb > 10 * want:
        hint = "Check the units: parameters times bytes per parameter, divided by 10**9."
    else:
        hint = "Parameters times bytes per parameter: how many bytes does the GPU's dtype take?"
    return verdict(False, "", hint)


EXERCISES = {
    1: Exercise(solved('forced = mmlab.setup("offline")'), "lesson00.check_forced_offline(forced)"),
    2: Exercise(solved('prediction = "hub"'), "lesson00.check_precedence(prediction)",
                "The argument, then MMLAB_MODE, then the offline variables, then the Hub probe: MMLAB_MODE=hub decides"),
    3: Exercise(solved("gigabytes = 3.74e9 * 2 / 1e9"), "lesson00.check_gpu_memory(gigabytes)",
                "float16 on a CUDA GPU: 2 bytes a parameter; 3.7 B parameters -> about 7.5 GB, which fits a 15 GB T4"),
}


def solution(n: int) -> None:
    """Print the worked solution of exercise `n`."""
    print(EXERCISES[n].worked())
