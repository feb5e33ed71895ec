"""The course's lesson registry: the twenty lessons, their questions and status, in one place.

Lesson 00's map and module tour are built from it, and ``tests/test_course.py`` fails when the README's lesson
map, the notebooks on disk or the labs disagree with it. Adding a lesson: set its status to "available" here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lesson:
    number: str
    slug: str
    question_zh: str
    question_en: str
    status: str = "planned"          # "available" once notebooks/NN_slug.ipynb exists
    modules: tuple[str, ...] = ()    # the utils modules the lesson introduces
    lab: bool = True

    @property
    def notebook(self) -> Path:
        return ROOT / "notebooks" / f"{self.number}_{self.slug}.ipynb"

    @property
    def lab_notebook(self) -> Path:
        return ROOT / "labs" / f"{self.number}_{self.slug}_lab.ipynb"


LESSONS = (
    Lesson("00", "start_here", "这门课怎么学？", "How does the course work?", "available",
           ("repro", "device", "data", "train", "metrics", "plots", "show", "checks", "labs", "course"), lab=False),
    Lesson("01", "evaluation", "如何评估一个模型？一个指标掩盖了什么？", "How do you evaluate a model, and what does one number hide?",
           "available"),
    Lesson("02", "data_quality", "如何处理数据质量、泄漏和类别不平衡？", "How do you handle data quality, leakage and class imbalance?",
           "available", ("quality",)),
    Lesson("03", "overfitting", "如何防止大模型过拟合？", "How do you keep a large model from overfitting?", "available",
           ("augment", "regularize")),
    Lesson("04", "training_efficiency", "如何优化AI大模型的训练速度？", "How do you train a large model faster and cheaper?",
           "available", ("lm",)),
    Lesson("05", "distributed_training", "如何进行分布式训练？", "How do you train one model on many devices?", "available",
           ("distributed",)),
    Lesson("06", "tuning_ensembles", "如何调参、如何融合模型？", "How do you tune hyper-parameters and combine models?",
           "available", ("tuning",)),
    Lesson("07", "transfer_learning", "如何做迁移学习和参数高效微调？", "How do you adapt a pretrained model to a new task cheaply?",
           "available", ("adapt",)),
    Lesson("08", "compression", "如何压缩大模型以便部署？", "How do you make a model smaller and faster?", "available",
           ("compression", "bench")),
    Lesson("09", "explainability", "如何解释模型的决策？", "How do you explain a model's decisions?", "available", ("explain",)),
    Lesson("10", "fairness", "如何发现并减少模型偏见？", "How do you find and reduce bias?", "available", ("fairness",)),
    Lesson("11", "privacy", "如何保护训练数据的隐私？", "How do you protect the data a model learns from?", "available",
           ("privacy",)),
    Lesson("12", "federated_learning", "如何做联邦学习？", "How do you train on data that cannot leave its owners?",
           "available", ("federated",)),
    Lesson("13", "robustness_security", "如何提高模型的鲁棒性和安全性？", "How do you make a model robust and secure against attacks?",
           "available", ("robustness",)),
    Lesson("14", "deployment", "如何可靠地部署和服务模型？", "How do you ship and serve a model reliably?", "available",
           ("serving",)),
    Lesson("15", "realtime_inference", "如何满足实时推理的需求？", "How do you meet real-time latency requirements?",
           "available", ("realtime",)),
    Lesson("16", "monitoring", "如何监控模型并持续学习？", "How do you monitor a model and keep it learning?", "available",
           ("monitoring",)),
    Lesson("17", "versioning_testing", "如何做模型版本管理、灰度发布和回滚？", "How do you version, roll out, roll back and test models?",
           "available", ("versioning", "abtest")),
    Lesson("18", "long_sequences", "如何处理长序列？", "What does attention cost as the context grows, and what keeps it exact?",
           "available", ("longseq",)),
    Lesson("19", "business_value", "如何评估AI大模型的商业价值？", "What is a model worth, what does it cost, and how do you prove it?",
           "available", ("business",)),
)


def lesson(number: str) -> Lesson:
    """The registry entry of lesson ``number`` ("04")."""
    for entry in LESSONS:
        if entry.number == number:
            return entry
    raise ValueError(f"no lesson {number!r}; lessons are numbered 00 to 19")


def available() -> list[Lesson]:
    """The lessons that have landed, in order."""
    return [entry for entry in LESSONS if entry.status == "available"]


def lesson_map():
    """All twenty lessons as a table (lesson 00 shows it): number, topic, question in both languages, status."""
    import pandas as pd

    return pd.DataFrame([{"lesson": e.number, "topic": e.slug.replace("_", " "), "问题": e.question_zh,
                          "question": e.question_en, "status": e.status} for e in LESSONS])
