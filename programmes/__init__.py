"""Programme cohorts (Troubled Families, Supporting Families), family needs and the cost of intervention.

Rules are YAML files in programmes/rules/ (one per programme and version), unit costs are
programmes/unit_costs.yaml; both are validated with errors naming the file and key. `evaluate_snapshot` runs
every programme over a built snapshot in DuckDB and writes the `programmes.*` tables behind the `golden.cohort…`
and `pseudonymised.cohort…` views. See programmes/README.md.
"""

from programmes._evaluate import (CohortSummary, add_to_published_snapshot, create_views, ensure_tables,
                                  evaluate_published, evaluate_snapshot, published_tables)
from programmes._rules import RuleError, load_programme, load_programmes, load_unit_costs

__all__ = ["CohortSummary", "RuleError", "add_to_published_snapshot", "create_views", "ensure_tables",
           "evaluate_published", "evaluate_snapshot", "load_programme", "load_programmes", "load_unit_costs",
           "published_tables"]
