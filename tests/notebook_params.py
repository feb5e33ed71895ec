"""The smaller parameters the test suite injects into each notebook: declared here, in one place.

Keys are notebook names without ``.ipynb``. Every lesson must be listed (``tests/test_hygiene.py``); a lab
solution missing here runs with its defaults, which most labs keep small already.
``make bench`` (``BML_DEFAULT_PARAMETERS=1``) ignores this file and runs the defaults.
"""

TEST_PARAMETERS = {
    "00_start_here": {"epochs": 5},
    "01_evaluation": {"n_repeats": 8, "n_boot": 200, "leak_seeds": 1, "rare_draws": 5, "lm_seeds": 1, "lm_items": 100, "lm_leak_steps": 40},
    "02_data_quality": {"n_seeds": 2, "n_rows": 5000, "n_noise_features": 1000},
    "03_overfitting": {"n_seeds": 1, "n_bagged": 2, "sizes": [50, 800], "widths": [8, 512], "k_folds": 2, "epochs": 60,
                       "adamw_decays": [0.01, 3.0], "rf_features": [30, 100, 300, 3000]},
    "04_training_efficiency": {"bench_repeats": 2, "demo_steps": 20, "loader_items": 16, "warmup_steps": 16,
                               "warmup_seeds": 1, "batch_sizes": [8, 32], "scaling_tokens": 16384, "scaling_seeds": 1,
                               "run_compile": False},
    "04_training_efficiency_lab": {"train_steps": 40},
    "08_compression": {"sparsities": [0.5, 0.8, 0.95], "prune_steps": 2, "finetune_epochs": 3, "prune_seeds": 2, "lm_eval_batches": 5, "temperatures": [1.0, 8.0], "ranks": [4, 64],
                       "bench_repeats": 20},
    "09_explainability": {"n_explained": 2, "kernel_samples": [30, 1000], "n_forest_rows": 3000, "perm_repeats": 5,
                          "digits_epochs": 15, "surrogate_radii": [0.1, 1.0], "lm_prompts": 16, "completeness_steps": [16, 64]},
    "10_fairness": {"n_train_rows": 8000},
    "11_privacy": {"laplace_trials": 500, "curve_epsilons": [0.5, 8.0], "overfit_epochs": 150, "memo_seeds": 1,
                   "memo_steps": 42, "canary_levels": [0, 2, 16]},
    "12_federated_learning": {"n_seeds": 1, "rounds": 30, "fedsgd_lrs": [0.3, 1.0], "prox_mus": [1.0], "dp_noises": [1.0],
                              "run_processes": False},
    "05_distributed_training": {"ring_sizes": [1, 1001, 100003], "scaling_steps": 6, "scaling_repeats": 1,
                                "run_torchrun": False},
    "06_tuning_ensembles": {"n_seeds": 4, "n_trials": 30, "real_trials": 4, "n_val_draws": 10, "mlp_seeds": 2,
                            "n_trees": 30, "nested_seeds": 2},
    "07_transfer_learning": {"steps": 10, "eval_every": 10, "target_sizes": [0, 64000], "n_seeds": 2},
    "13_robustness_security": {"n_seeds": 1, "eps_grid": [0.0, 0.05, 0.1], "adv_epochs": 20, "poison_rates": [0.0, 0.05],
                               "query_budgets": [50, 360], "lm_queries": 300},
    "14_deployment": {"epochs": 10, "latency_repeats": 50, "n_requests": 300},
    "19_business_value": {"n_customers": 8000, "n_seeds": 2, "n_experiments": 1000},
    "15_realtime_inference": {"latency_samples": 20000, "kv_lengths": [32, 256], "batch_sizes": [1, 8, 32], "bench_repeats": 10,
                              "n_requests": 150, "n_cache_requests": 20000, "int8_widths": [256, 2048], "int8_epochs": 1,
                              "n_prompts": 2, "spec_new_tokens": 60, "draft_ks": [1, 4], "stream_tokens": 60},
    "16_monitoring": {"n_train_rows": 8000, "window": 1000, "drift_draws": 2, "n_null_windows": 100, "mmd_rows": 150, "n_permutations": 50,
                      "stream_windows": 20, "drift_start": 10, "online_batches": 40, "n_seeds": 2, "task_epochs": 10},
    "17_versioning_testing": {"lm_steps": 2, "n_null_streams": 200, "n_experiments": 1000},
    "18_long_sequences": {"lengths": [256, 1024, 2048], "memory_length": 2048, "bench_repeats": 3, "train_steps": 60,
                          "position_seeds": 1, "eval_multiples": [1, 4], "needle_trials": 16},
}
