"""The label sets of the real datasets (pure data, no imports): the dataset catalog reads files with them, the task
registry trains on them."""

# NIH ChestX-ray14 (DXC14)
CXR14_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
                 "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")

# CheXpert (DXC5): trained on 14 labels, tested on 5
CHEXPERT_CLASSES = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
                    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
                    "Pleural Other", "Fracture", "Support Devices")
CHEXPERT_TEST = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

# VinDr-CXR: six image-level diagnoses (MedIA 2025)
VINDR_CLASSES = ("COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding")

# MedMNIST+ (the colab profile's sets)
MEDMNIST = {  # flag: (title, classes, kind, channels)
    "chestmnist": ("ChestMNIST (ChestX-ray14)", CXR14_CLASSES, "multilabel", 1),
    "pneumoniamnist": ("PneumoniaMNIST (paediatric CXR)", ("pneumonia",), "binary", 1),
    "breastmnist": ("BreastMNIST (breast ultrasound)", ("normal or benign",), "binary", 1),  # 0 = malignant
    "organamnist": ("OrganAMNIST (abdominal CT, axial)", ("bladder", "femur-left", "femur-right", "heart",
                    "kidney-left", "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"),
                    "multiclass", 1),
}
