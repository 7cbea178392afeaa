"""The canonical schema every source contract maps onto (see shared DESIGN.md, data model).

One source row becomes one ``person_record`` (plus, where the extract names them, related
persons such as a pupil's parent/carer, each its own record), any number of ``involvement``
rows (agency, service and named professional) and ``event`` rows (facts programmes count).
``stated_relationship`` keeps relationships a source states between its own records.

Standardised/derived columns sit beside the source's own values, never over them.
"""

from __future__ import annotations

import polars as pl

# Keys that identify one staged record everywhere downstream.
RECORD_KEY = ("source", "record_id")

PERSON_RECORD: dict[str, pl.DataType] = {
    # provenance
    "source": pl.String(),
    "record_id": pl.String(),
    "extract_date": pl.Date(),
    "file_sha256": pl.String(),
    "row_number": pl.Int64(),  # 1-based data row in the file (header excluded)
    "record_role": pl.String(),  # "subject" or the related-person role (e.g. "parent_carer")
    # names as the source gave them
    "title": pl.String(),
    "first_name": pl.String(),
    "middle_names": pl.String(),
    "last_name": pl.String(),
    "aliases": pl.List(pl.String()),
    # standardised names (derived)
    "first_name_std": pl.String(),
    "first_name_formal": pl.String(),  # nickname -> formal name (Bill -> william)
    "middle_names_std": pl.String(),
    "last_name_std": pl.String(),
    "sex": pl.String(),  # "M", "F" or null
    "date_of_birth": pl.Date(),
    # address
    "address_text": pl.String(),  # the address lines joined as received
    "address_std": pl.String(),  # cleaned, uppercase, abbreviations expanded
    "address_tokens": pl.List(pl.String()),
    "postcode": pl.String(),  # normalised "AA9A 9AA" or null
    "uprn": pl.Int64(),  # when the source carries one
    "no_fixed_abode": pl.Boolean(),
    "address_from": pl.Date(),
    "address_to": pl.Date(),
    # identifiers (null when absent or invalid; flags say which)
    "nhs_number": pl.String(),
    "ni_number": pl.String(),
    "upn": pl.String(),
    "pnc_id": pl.String(),
    "crn": pl.String(),
    "tenancy_ref": pl.String(),
    "local_id": pl.String(),
    # contact
    "phone": pl.String(),
    "email": pl.String(),
    # data-quality flags raised by standardisation (e.g. "nhs_number_invalid")
    "quality_flags": pl.List(pl.String()),
    # shielding: the source marks the record confidential (e.g. a child at risk); the practitioner service
    # reveals such a person only through the fields searched
    # (last, so warehouses created before it only need the column appended)
    "confidential": pl.Boolean(),
}

# Identifiers of any name, one row per (record, scheme), beside the fixed identifier columns above: a contract
# declares them (sources/_contract.py Identifier) and the person model compares and blocks on every scheme
# two or more sources populate (docs/adr/0006-identifiers-of-any-name.md). `scope` is national or local; a
# local value is unique only inside the agency that issued it.
PERSON_IDENTIFIER: dict[str, pl.DataType] = {
    "source": pl.String(),
    "record_id": pl.String(),
    "scheme": pl.String(),
    "scope": pl.String(),
    "value": pl.String(),  # normalised: upper case, no spaces or hyphens; never an invalid value
}

INVOLVEMENT: dict[str, pl.DataType] = {
    "source": pl.String(),
    "record_id": pl.String(),
    "agency": pl.String(),
    "service": pl.String(),
    "worker_name": pl.String(),
    "worker_role": pl.String(),
    "worker_phone": pl.String(),
    "worker_email": pl.String(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
}

EVENT_TYPES = (
    "offence",
    "anti_social_behaviour",
    "domestic_abuse",
    "exclusion_fixed",
    "exclusion_permanent",
    "attendance",  # value = attendance percentage
    "tenancy_action",
    "worklessness",
    "health_need",
    "child_in_need",
    "sentence",
)

EVENT: dict[str, pl.DataType] = {
    "source": pl.String(),
    "record_id": pl.String(),
    "event_type": pl.String(),  # one of EVENT_TYPES
    "event_date": pl.Date(),
    "value": pl.Float64(),
    "detail": pl.String(),
}

STATED_RELATIONSHIP: dict[str, pl.DataType] = {
    "source": pl.String(),
    "record_id": pl.String(),
    "related_record_id": pl.String(),
    "relationship": pl.String(),  # parent_of, child_of, partner_of, household_member_of
}

RELATIONSHIP_TYPES = ("parent_of", "child_of", "partner_of", "household_member_of")


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select the schema's columns in order, adding missing ones as nulls and casting types."""
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
