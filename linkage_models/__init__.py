"""Linking people and addresses: Splink person model, address → UPRN matching, clustering, stable ids.

The person model is built from the fields the staged records carry (`build_plan`, `ModelPlan`); training
writes its settings as a reviewable file beside the model (`train_person_model`).
"""

from linkage_models._engine import DuckDBEngine
from linkage_models._explain import WaterfallStep, explain_pairs
from linkage_models._model_builder import (FIXED_IDENTIFIERS, ModelBuildError, ModelPlan, build_input, build_plan, input_select,
                                          load_plan)
from linkage_models._stable_ids import (assign_household_ids, assign_person_ids, assign_stable_ids, commit_assignment,
                                       discard_uncommitted, run_lineage)
from linkage_models._person_model import predict_and_cluster, train_person_model
from linkage_models.evaluate import person_link_quality

__all__ = [
    "DuckDBEngine",
    "FIXED_IDENTIFIERS",
    "ModelBuildError",
    "ModelPlan",
    "assign_household_ids",
    "assign_person_ids",
    "assign_stable_ids",
    "WaterfallStep",
    "build_input",
    "commit_assignment",
    "discard_uncommitted",
    "explain_pairs",
    "build_plan",
    "input_select",
    "load_plan",
    "person_link_quality",
    "predict_and_cluster",
    "run_lineage",
    "train_person_model",
]
