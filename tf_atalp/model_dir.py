"""The names of what a training run writes into its model_dir.

train_main writes them (tf_atalp.training.run); eval_main and the export
read them. One place, so neither side imports the other for a file name.
"""

RUN_CONFIG_FILE = "run_config.json"  # the resolved RunConfig
FLAGFILE = "train.flags"  # a flagfile that reproduces the run
MODEL_FILE = "model.keras"  # the final network (logits + conv-group outputs)
SAVED_MODEL_DIR = "saved_model"  # the serving SavedModel
RESULTS_FILE = "train_results.json"  # final metrics of the run
HISTORY_FILE = "history.csv"  # per-epoch metrics, appended across resumes
