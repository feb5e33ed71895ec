"""Plausible wrong answers for every lab check, one module per lesson. Each check must reject all of them."""

from wrong_answers import lesson01

WRONG_ANSWERS = {**lesson01.WRONG}
