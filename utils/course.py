"""The course's lesson registry: every lesson (twenty today), its question and status, in one place.

Lesson 00's map and module tour, README's lesson map, the site's index and navigation and ``QUESTIONS.md`` are
built from it, and ``tests/test_course.py`` fails when the notebooks on disk or the labs disagree with it.
Adding a lesson: set its status to "available" here, with its summary, run time and test parameters, then

    python -m utils.course build   # rewrite README's lesson map from the registry
    python -m utils.course check   # exit 1 when README's lesson map is stale (make test runs it)
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The public GitHub repository ("owner/name") and branch the course is published from. Empty until it is public:
# the Colab badges and install cells (`python -m utils.colab build`) need it, and nothing else does.
REPOSITORY = ""
BRANCH = "main"


@dataclass(frozen=True)
class Lesson:
    number: str
    slug: str
    question_zh: str
    question_en: str
    status: str = "planned"          # "available" once notebooks/NN_slug.ipynb exists
    modules: tuple[str, ...] = ()    # the utils modules the lesson introduces
    lab: bool = True
    name: str = ""                   # the topic as README and the site write it; default: the slug with spaces
    run_time: str = ""               # README's run-time column, measured by `make bench`
    summary: str = ""                # README's lesson map: the question and what the lesson measures
    # The smaller parameters `make test` injects (names from the notebook's `parameters` cell), close to the
    # kernel-and-import floor; the lab solution runs with its defaults unless it declares its own.
    test_parameters: dict = field(default_factory=dict, hash=False)
    lab_test_parameters: dict = field(default_factory=dict, hash=False)

    @property
    def topic(self) -> str:
        return self.name or self.slug.replace("_", " ")

    @property
    def notebook(self) -> Path:
        return ROOT / "notebooks" / f"{self.number}_{self.slug}.ipynb"

    @property
    def lab_notebook(self) -> Path:
        return ROOT / "labs" / f"{self.number}_{self.slug}_lab.ipynb"


LESSONS = (
    Lesson("00", "start_here", "这门课怎么学？", "How does the course work?",
           "available", ("repro", "device", "data", "train", "metrics", "plots", "show", "checks", "labs", "course"), lab=False,
           run_time="~9 s",
           test_parameters={"epochs": 5},
           summary=("How does the course work: lessons, labs, checks, the `utils` package?")),
    Lesson("01", "evaluation", "如何评估一个模型？一个指标掩盖了什么？", "How do you evaluate a model, and what does one number hide?",
           "available", run_time="~37 s (lab: ~5 s)",
           test_parameters={"n_repeats": 8, "n_boot": 200, "leak_seeds": 1, "rare_draws": 5, "lm_seeds": 1,
                            "lm_items": 100, "lm_leak_steps": 40},
           summary=("How do you evaluate a model, and what does one number hide? Metrics from scratch, imbalance, ROC vs "
                    "PR (over random draws), one-vs-rest ROC for many classes, calibration (and what "
                    "`CalibratedClassifierCV` really fits), bootstrap confidence intervals and what CV spread does not "
                    "measure, the leaky K-fold loop, cost-sensitive thresholds; on the course's language model: bits per "
                    "byte against perplexity, task accuracy with an interval under two scoring rules (and a scorer's "
                    "length bias), contamination measured and detected by n-gram overlap.")),
    Lesson("02", "data_quality", "如何处理数据质量、泄漏和类别不平衡？", "How do you handle data quality, leakage and class imbalance?",
           "available", ("quality",), run_time="~18 s (lab: ~4 s)",
           test_parameters={"n_seeds": 2, "n_rows": 5000, "n_noise_features": 1000},
           summary=("What does each data problem cost a model, and what fixes it? Who `dropna` removes (and the "
                    "miscalibration it leaves), four leaks measured (test-row statistics: nothing for a scaler, 25 points "
                    "for feature selection on noise; duplicates across splits; a target-derived column; a random split of "
                    "a time series), `drop_duplicates()` deleting distinct people, label issues by confident learning equal to "
                    "cleanlab (and what cleaning buys a linear model and a memorising one), class imbalance where "
                    "resampling moves the operating point and breaks calibration but did not improve a logistic "
                    "regression's ranking (SMOTE equal to imbalanced-learn), train/serve skew, batch validation per "
                    "source.")),
    Lesson("03", "overfitting", "如何防止大模型过拟合？", "How do you keep a large model from overfitting?",
           "available", ("augment", "regularize"), run_time="~67 s (lab: ~7 s)",
           test_parameters={"n_seeds": 1, "n_bagged": 2, "sizes": [50, 800], "widths": [8, 512], "k_folds": 2,
                            "epochs": 60, "adamw_decays": [0.01, 3.0], "rf_features": [30, 100, 300, 3000]},
           summary=("How do you keep a large model from overfitting? The gap made visible, learning and capacity curves, "
                    "double descent past the interpolation threshold, L2 under Adam vs AdamW's decoupled decay (and its "
                    "range), L1, dropout, early stopping, augmentation, label smoothing, bagging, named winners over "
                    "seeds; cross-validation to choose.")),
    Lesson("04", "training_efficiency", "如何优化AI大模型的训练速度？", "How do you train a large model faster and cheaper?",
           "available", ("lm",), run_time="~58 s (lab: ~7 s)",
           test_parameters={"bench_repeats": 2, "demo_steps": 20, "loader_items": 32, "warmup_steps": 16,
                            "warmup_seeds": 1, "batch_sizes": [8, 32], "scaling_tokens": 16384, "scaling_seeds": 1,
                            "run_compile": False},
           lab_test_parameters={"train_steps": 40},
           summary=("How do you train a large model faster and cheaper? The course's small GPT (`utils.lm`) built step by "
                    "step and checked against PyTorch's attention and encoder layer; FLOPs ≈ 6ND against the FLOP "
                    "counter; 16 bytes per parameter with Adam; the profiler and the data loader; gradient accumulation "
                    "(and why BatchNorm breaks it); bf16 autocast, activation checkpointing, warm-up with cosine decay, "
                    "`torch.compile`, batch size and learning rate, each measured.")),
    Lesson("05", "distributed_training", "如何进行分布式训练？", "How do you train one model on many devices?",
           "available", ("distributed",), run_time="~32 s (lab: ~9 s)",
           test_parameters={"ring_sizes": [1, 1001, 100003], "scaling_steps": 6, "scaling_repeats": 1, "timing_rounds": 5,
                            "run_torchrun": False},
           summary=("How do you train one model on many devices? Real gloo processes on this CPU: the four collectives, "
                    "the ring all-reduce from scratch (equal to `dist.all_reduce`, its 2(N−1)/N traffic counted), data "
                    "parallel by hand, by ring and with DDP equal to one process on the combined batch (1e-15 in "
                    "float64), the sampler and BatchNorm mistakes, ZeRO's memory per stage (fp32, mixed precision) counted under ZeRO-1 from "
                    "scratch, `ZeroRedundancyOptimizer` and FSDP2, a tensor-parallel MLP and the pipeline bubble, scaling "
                    "on two cores and the communication/compute ratio of a cluster, `torchrun`, a crash and a resume from "
                    "checkpoint.")),
    Lesson("06", "tuning_ensembles", "如何调参、如何融合模型？", "How do you tune hyper-parameters and combine models?",
           "available", ("tuning",), name="tuning and ensembles", run_time="~39 s (lab: ~4 s)",
           test_parameters={"n_seeds": 4, "n_trials": 30, "real_trials": 4, "n_val_draws": 10, "mlp_seeds": 2,
                            "n_trees": 30, "nested_seeds": 2},
           summary=("How do you tune hyper-parameters and combine models? Grid against random search when one parameter "
                    "matters, Bayesian optimisation from scratch (a Gaussian process equal to scikit-learn's, expected "
                    "improvement, its kernel width fitted by marginal likelihood) racing Optuna's TPE over seeds, successive halving from scratch equal to scikit-learn's "
                    "`HalvingGridSearchCV`, the winner's curse measured and nested cross-validation over many samples, "
                    "stacking without "
                    "leakage (equal to `StackingClassifier`), ensembles against the best single model with their "
                    "diversity and latency.")),
    Lesson("07", "transfer_learning", "如何做迁移学习和参数高效微调？", "How do you adapt a pretrained model to a new task cheaply?",
           "available", ("adapt",), run_time="~80 s (lab: ~6 s)",
           test_parameters={"steps": 10, "eval_every": 10, "target_sizes": [0, 64000], "n_seeds": 2, "lm_seeds": 1,
                            "lr_grids": {"full": [1e-4, 3e-4], "top block": [3e-4, 1e-3], "LoRA": [3e-3, 1e-2],
                                         "scratch": [3e-3, 1e-2]}},
           summary=("How do you adapt a pretrained model to a new task cheaply? The course's language model moved from "
                    "its reference text to Python source code: what the pretrained start buys at equal fine-tuning steps "
                    "(and what it cost), full fine-tuning against the top block and LoRA with each learning rate chosen "
                    "on validation over seeds, LoRA from scratch (merged, equal to `peft`), forgetting of the source; on "
                    "digits, what transfers between tasks, self-training with its threshold chosen on validation (equal "
                    "to scikit-learn's) and label spreading, active learning by uncertainty, distillation onto unlabelled "
                    "images and why the teacher's labels are what it passes on; LoRA and QLoRA memory at 7B.")),
    Lesson("08", "compression", "如何压缩大模型以便部署？", "How do you make a model smaller and faster?",
           "available", ("compression", "bench"), run_time="~28 s (lab: ~6 s)",
           test_parameters={"sparsities": [0.5, 0.8, 0.98], "prune_steps": 2, "finetune_epochs": 3, "prune_seeds": 2,
                            "lm_eval_batches": 5, "temperatures": [1.0, 8.0], "ranks": [4, 64], "bench_repeats": 20,
                            "scratch_weight_decays": [0.0, 1e-2], "timing_rounds": 9},
           summary=("How do you make a model smaller and faster? Magnitude pruning checked against torch.nn.utils.prune, "
                    "masks held at every step, why global pruning collapses at 98%, why zeros save nothing until sparse "
                    "or structured, int8 by hand, with torchao (smaller, slower on CPU) and ONNX Runtime (faster), "
                    "distillation on a transfer set with its temperature chosen on validation, truncated SVD and the "
                    "spectrum behind it, one size-accuracy-latency chart; the course's language model quantised to int8 "
                    "and group-wise int4 (bits per byte measured) and why bytes bound LLM decoding speed.")),
    Lesson("09", "explainability", "如何解释模型的决策？", "How do you explain a model's decisions?",
           "available", ("explain",), run_time="~37 s (lab: ~6 s)",
           test_parameters={"n_explained": 2, "kernel_samples": [30, 1000], "n_forest_rows": 3000, "perm_repeats": 5,
                            "digits_epochs": 15, "surrogate_radii": [0.1, 1.0], "lm_prompts": 16,
                            "completeness_steps": [16, 64]},
           summary=("How do you explain a model's decisions? Impurity vs permutation importance, PDP and ICE, exact "
                    "Shapley values checked against shap (Exact, Tree, Kernel), interventional vs path-dependent "
                    "TreeSHAP, a LIME-style surrogate with its fidelity (and why it needs probabilities), integrated "
                    "gradients, measured ways explanations mislead, a glass-box tree and its accuracy cost; on the "
                    "course's language model: integrated gradients on input embeddings (completeness against steps), "
                    "attention maps, and occlusion showing the attended byte matters half as much as the attributed one.")),
    Lesson("10", "fairness", "如何发现并减少模型偏见？", "How do you find and reduce bias?",
           "available", ("fairness",), run_time="~1 min (lab: ~4 s)",
           test_parameters={"n_train_rows": 8000, "seeds": [0], "n_boot": 50},
           summary=("How do you find and reduce bias? Group metrics checked against fairlearn, amplification, proxies, "
                    "why label balancing moves the DP difference but not the ratio, reweighing vs ExponentiatedGradient "
                    "vs ThresholdOptimizer chosen on validation, the impossibility result, a generated model card, what "
                    "GDPR, the EU AI Act and China's generative-AI measures ask for.")),
    Lesson("11", "privacy", "如何保护训练数据的隐私？", "How do you protect the data a model learns from?",
           "available", ("privacy",), run_time="~37 s (lab: ~6 s)",
           test_parameters={"laplace_trials": 500, "curve_epsilons": [0.5, 8.0], "overfit_epochs": 150, "memo_seeds": 1,
                            "memo_steps": 42, "canary_levels": [0, 2, 16], "ablation_seeds": 1},
           summary=("How do you protect the data a model learns from? Membership inference measured, re-identification "
                    "and k-anonymity, a timed dictionary attack on hashes vs HMAC, authenticated encryption and its "
                    "limit, secret sharing and Paillier encryption built and timed, TEEs costed, the Laplace mechanism, "
                    "DP-SGD and its RDP accountant from scratch (equal to Opacus), why DP costs more on small data "
                    "(amplification by subsampling); on the course's language model: planted canaries, their exposure "
                    "against repetitions, extraction by greedy generation, and what deduplication and shorter training "
                    "buy.")),
    Lesson("12", "federated_learning", "如何做联邦学习？", "How do you train on data that cannot leave its owners?",
           "available", ("federated",), run_time="~35 s (lab: ~4 s)",
           test_parameters={"n_seeds": 1, "rounds": 30, "fedsgd_lrs": [0.3, 1.0], "prox_mus": [1.0], "dp_noises": [1.0],
                            "run_processes": False},
           summary=("How do you train on data that cannot leave its owners? FedAvg from scratch (FedSGD equal to "
                    "centralised SGD only when weighted by size), rounds against local epochs, label-skewed clients and "
                    "client drift, FedProx measured, partial participation and the bias of data-correlated dropouts, "
                    "secure aggregation with Diffie-Hellman masks and Shamir recovery from a dropout, a training image "
                    "rebuilt from one update, DP-FedAvg and why it needs many clients, the protocol over real processes "
                    "(torch.distributed), Flower mapped piece by piece.")),
    Lesson("13", "robustness_security", "如何提高模型的鲁棒性和安全性？", "How do you make a model robust and secure against attacks?",
           "available", ("robustness",), name="robustness and security", run_time="~27 s (lab: ~6 s)",
           test_parameters={"n_seeds": 1, "eps_grid": [0.0, 0.05, 0.1], "adv_epochs": 20, "poison_rates": [0.0, 0.05],
                            "query_budgets": [50, 360], "lm_queries": 300, "spectral_rates": [0.03],
                            "weight_decays": [1e-2]},
           summary=("How do you make a model robust and secure against attacks? FGSM and PGD from scratch equal to ART's, "
                    "why a tiny perturbation beats random noise of the same size, PGD adversarial training checked for "
                    "gradient masking (and the banks' flips and noise injection measured against it), shift and "
                    "corruptions with overconfidence and an out-of-distribution score, a BadNets backdoor found by "
                    "spectral signatures and a trigger scan, model stealing by equation solving and from labels (and a "
                    "language model's hidden width read off its logits), prompt injection against a keyword filter and "
                    "privilege separation, security checks as pytest release gates.")),
    Lesson("14", "deployment", "如何可靠地部署和服务模型？", "How do you ship and serve a model reliably?",
           "available", ("serving",), run_time="~18 s (lab: ~4 s)",
           test_parameters={"epochs": 10, "latency_repeats": 50, "n_requests": 300},
           summary=("How do you ship and serve a model reliably? torch.export and ONNX with parity checks, a safetensors "
                    "artifact with a hash manifest signed by Ed25519 (and why pickles run code), eager vs ONNX Runtime "
                    "latency, a validated FastAPI service with separate liveness and readiness and Prometheus metrics "
                    "under a bounded load, a reviewed Dockerfile and Kubernetes manifests with the image pinned by "
                    "digest.")),
    Lesson("15", "realtime_inference", "如何满足实时推理的需求？", "How do you meet real-time latency requirements?",
           "available", ("realtime",), run_time="~30 s (lab: ~4 s)",
           test_parameters={"latency_samples": 20000, "kv_lengths": [32, 256], "batch_sizes": [1, 8, 32],
                            "bench_repeats": 10, "n_requests": 150, "n_cache_requests": 20000,
                            "int8_widths": [256, 2048], "int8_epochs": 1, "n_prompts": 2, "spec_new_tokens": 60,
                            "draft_ks": [1, 4], "stream_tokens": 60,
                            "n_light_requests": 12, "load_rounds": 2, "timing_rounds": 2},
           summary=("How do you meet a latency budget under real traffic? Percentiles that do not add and the fan-out "
                    "tail, a KV cache on the course's language model (identical tokens, its speed-up against length, its "
                    "memory for 7B–70B shapes), a dynamic batcher under Poisson load (bounded queue above capacity, a "
                    "higher median at light load), continuous batching, LRU caching against traffic skew with versioned keys, "
                    "int8 that is really faster (and where it is not), speculative decoding with identical output, "
                    "streaming tokens.")),
    Lesson("16", "monitoring", "如何监控模型并持续学习？", "How do you monitor a model and keep it learning?",
           "available", ("monitoring",), run_time="~22 s (lab: ~5 s)",
           test_parameters={"n_train_rows": 8000, "window": 1000, "drift_draws": 2, "n_null_windows": 100,
                            "mmd_rows": 150, "n_permutations": 50, "stream_windows": 20, "drift_start": 10,
                            "online_batches": 40, "n_seeds": 2, "task_epochs": 10,
                            "ewc_lambdas": [1000.0]},
           summary=("How do you know a live model is going wrong, and keep it learning without forgetting? PSI, KS (equal "
                    "to scipy) and an MMD permutation test as a shift grows, PSI's false alarms in small windows and why "
                    "significance is not size, accuracy estimated without labels and the concept drift it cannot see, a "
                    "monitoring loop with a calibrated threshold, retraining on a schedule vs a trigger vs online, "
                    "catastrophic forgetting with EWC and reservoir replay against joint training.")),
    Lesson("17", "versioning_testing", "如何做模型版本管理、灰度发布和回滚？", "How do you version, roll out, roll back and test models?",
           "available", ("versioning", "abtest"), run_time="~24 s (lab: ~5 s)",
           test_parameters={"lm_steps": 2, "n_null_streams": 200, "n_experiments": 1000},
           summary=("How do you version, roll out, roll back and test models? A version as code, data fingerprint (row- "
                    "and column-order free), configuration, seed and environment (1 and 2 threads train the course's "
                    "language model to different weights); a content-addressed registry with aliases, then MLflow on "
                    "SQLite; release tests in pytest (minimum functionality, invariance, directional, regression with a "
                    "margin, data, reproducibility) that reject a nightly retrain broken by its feature pipeline; shadow "
                    "mode, a canary whose rollback rule keeps false alarms under α, blue-green and a Kubernetes canary; "
                    "A/B tests equal to statsmodels, peeking, and sample-ratio mismatch.")),
    Lesson("18", "long_sequences", "如何处理长序列？", "What does attention cost as the context grows, and what keeps it exact?",
           "available", ("longseq",), run_time="~38 s (lab: ~5 s)",
           test_parameters={"lengths": [256, 1024, 2048], "memory_length": 2048, "bench_repeats": 3, "train_steps": 60,
                            "position_seeds": 1, "eval_multiples": [1, 4], "needle_trials": 16},
           summary=("What does attention cost as the context grows, and what keeps it exact? n² scores in bytes and "
                    "seconds (naive vs SDPA, peak memory in a fresh process), online-softmax attention from scratch equal "
                    "to SDPA, the kernel PyTorch picks, sliding windows in linear memory and what they cannot see, five "
                    "position schemes read at 1–8x their training length (ALiBi flat, learned cannot run, RoPE degrades), "
                    "RoPE interpolation measured, linear attention, chunking with overlap and retrieval.")),
    Lesson("19", "business_value", "如何评估AI大模型的商业价值？", "What is a model worth, what does it cost, and how do you prove it?",
           "available", ("business",), run_time="~6 s (lab: ~4 s)",
           test_parameters={"n_customers": 8000, "n_seeds": 2, "n_experiments": 1000},
           summary=("What is a model worth, what does it cost, and how do you prove it? Value as a counterfactual "
                    "difference (a randomised campaign: the uplift model beats the more accurate response model), cost "
                    "per 1,000 requests and tokens measured on the course's language model, break-even, NPV, payback and "
                    "a tornado chart, A/B test sizing and what peeking does to false wins.")),
)


def lesson(number: str) -> Lesson:
    """The registry entry of lesson ``number`` ("04")."""
    for entry in LESSONS:
        if entry.number == number:
            return entry
    raise ValueError(f"no lesson {number!r}; lessons are numbered {LESSONS[0].number} to {LESSONS[-1].number}")


def injected_parameters(path: str | Path) -> dict:
    """The parameters ``make test`` injects into the notebook at ``path`` (a lesson or its lab solution).

    >>> injected_parameters("notebooks/00_start_here.ipynb")
    {'epochs': 5}
    >>> injected_parameters("solutions/10_fairness_lab.ipynb")
    {}
    """
    stem = Path(path).stem
    for entry in LESSONS:
        if stem == f"{entry.number}_{entry.slug}":
            return copy.deepcopy(entry.test_parameters)   # the suite may not change the registry
        if stem == f"{entry.number}_{entry.slug}_lab":
            return copy.deepcopy(entry.lab_test_parameters)
    raise ValueError(f"{Path(path).name} is not a lesson or lab of the registry (utils/course.py); name it "
                     f"NN_slug.ipynb or NN_slug_lab.ipynb after its registry entry")


def available() -> list[Lesson]:
    """The lessons that have landed, in order."""
    return [entry for entry in LESSONS if entry.status == "available"]


def lesson_map():
    """Every registered lesson as a table (lesson 00 shows it): number, topic, question in both languages, status."""
    import pandas as pd

    return pd.DataFrame([{"lesson": e.number, "topic": e.topic, "问题": e.question_zh,
                          "question": e.question_en, "status": e.status} for e in LESSONS])


README = ROOT / "README.md"
MAP_START = "<!-- lesson map: generated from utils/course.py by `python -m utils.course build`; edit it there -->"
MAP_END = "<!-- end of the lesson map -->"


def readme_map() -> str:
    """README's lesson map, one row per lesson: planned lessons marked, available ones linked to notebook and lab."""
    lines = [MAP_START, "| # | lesson | the question it answers | lab | run time (default parameters) |",
             "| --- | --- | --- | --- | --- |"]
    for e in LESSONS:
        if e.status != "available":
            lines.append(f"| {e.number} | {e.topic} *(planned)* | {e.summary or e.question_en} | – | – |")
            continue
        lab = f"[lab](labs/{e.lab_notebook.name})" if e.lab else "–"
        lines.append(f"| {e.number} | [{e.topic}](notebooks/{e.notebook.name}) | {e.summary or e.question_en} | "
                     f"{lab} | {e.run_time or '–'} |")
    return "\n".join(lines + [MAP_END])


def readme_with_map(text: str) -> str:
    """``text`` (README) with the part between the markers replaced by :func:`readme_map`."""
    if MAP_START not in text or MAP_END not in text:
        raise ValueError(f"README.md lacks the lesson-map markers; put the map between {MAP_START!r} and "
                         f"{MAP_END!r}")
    before, rest = text.split(MAP_START, 1)
    return before + readme_map() + rest.split(MAP_END, 1)[1]


def write_or_check(command: str, path: Path, wanted: str, sources: str, module: str) -> int:
    """``build``: write the generated ``path``; ``check``: exit status 1 with a fix when it differs from ``wanted``."""
    if command == "build":
        path.write_text(wanted, encoding="utf-8")
        print(f"wrote {path.name}")
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != wanted:
        print(f"{path.name} is out of date with {sources}; run `python -m {module} build` and commit the result.",
              file=sys.stderr)
        return 1
    print(f"{path.name} is up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.course", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    wanted = readme_with_map(README.read_text(encoding="utf-8"))
    return write_or_check(args.command, README, wanted, "utils/course.py (its lesson map)", "utils.course")


if __name__ == "__main__":
    sys.exit(main())
