"""The Query/Retrieve information models (PS3.4 C.6) and their SOP classes (PS3.4 C.4 /
PS3.6 Annex A), shared by the query and retrieve SCUs and SCPs.

DCMTK's tools name the models with -P (patient root), -S (study root) and -O (patient/study
only, retired but still served by dcmqrscp) and the worklist with -W.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Model(StrEnum):
    PATIENT_ROOT = "patient"
    STUDY_ROOT = "study"
    PATIENT_STUDY_ONLY = "patient-study-only"
    WORKLIST = "worklist"


@dataclass(frozen=True, slots=True)
class ModelSOPClasses:
    find: str
    move: str | None
    get: str | None


SOP_CLASSES: dict[Model, ModelSOPClasses] = {
    Model.PATIENT_ROOT: ModelSOPClasses(
        find="1.2.840.10008.5.1.4.1.2.1.1",
        move="1.2.840.10008.5.1.4.1.2.1.2",
        get="1.2.840.10008.5.1.4.1.2.1.3",
    ),
    Model.STUDY_ROOT: ModelSOPClasses(
        find="1.2.840.10008.5.1.4.1.2.2.1",
        move="1.2.840.10008.5.1.4.1.2.2.2",
        get="1.2.840.10008.5.1.4.1.2.2.3",
    ),
    Model.PATIENT_STUDY_ONLY: ModelSOPClasses(  # retired (PS3.4 2004), dcmqrscp serves it
        find="1.2.840.10008.5.1.4.1.2.3.1",
        move="1.2.840.10008.5.1.4.1.2.3.2",
        get="1.2.840.10008.5.1.4.1.2.3.3",
    ),
    Model.WORKLIST: ModelSOPClasses(find="1.2.840.10008.5.1.4.31", move=None, get=None),
}

FIND_MODELS: dict[str, Model] = {classes.find: model for model, classes in SOP_CLASSES.items()}
MOVE_MODELS: dict[str, Model] = {
    classes.move: model for model, classes in SOP_CLASSES.items() if classes.move
}
GET_MODELS: dict[str, Model] = {
    classes.get: model for model, classes in SOP_CLASSES.items() if classes.get
}

# The levels of each model, top down (PS3.4 C.6.1.1, C.6.2.1, C.6.3.1).
LEVELS: dict[Model, tuple[str, ...]] = {
    Model.PATIENT_ROOT: ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    Model.STUDY_ROOT: ("STUDY", "SERIES", "IMAGE"),
    Model.PATIENT_STUDY_ONLY: ("PATIENT", "STUDY"),
    Model.WORKLIST: (),
}
