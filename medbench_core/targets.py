"""Target conventions shared by datasets, tasks, training and metrics (no imports: every layer may use them)."""

CLASSIFICATION = "multilabel_classification"
SEGMENTATION = "binary_segmentation"
IGNORE = 2  # segmentation target value of pixels that neither loss nor metric counts (outside a field of view)
