"""Plausible wrong answers for every lab check, one module per lesson. Each check must reject all of them."""

from wrong_answers import lesson01, lesson03, lesson08, lesson09, lesson10, lesson11, lesson14

WRONG_ANSWERS = {**lesson01.WRONG, **lesson03.WRONG, **lesson08.WRONG, **lesson09.WRONG, **lesson10.WRONG,
                 **lesson11.WRONG, **lesson14.WRONG}
