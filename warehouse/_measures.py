"""Measures quoted in more than one place (run summary, report, evaluation, README), defined once here."""

from __future__ import annotations

import duckdb

# The one definition of the UPRN match rate, quoted by the run summary, the report and `familylink evaluate`.
UPRN_MATCH_RATE_DEFINITION = ("UPRN match rate: of the staged source records that carry an address (people of no "
                              "fixed abode left out), the share whose address was matched to a UPRN of the council's "
                              "gazetteer.")


def uprn_match_rate(con: duckdb.DuckDBPyConnection) -> dict:
    """Records with an address, records whose address matched a UPRN, and their share (see the definition above)."""
    with_address, matched = con.execute(
        """
        with eligible as (
            select address_key(r.address_std, r.postcode, r.uprn) as address_key
            from staging.person_record as r
            where not coalesce(r.no_fixed_abode, false) and (r.address_std is not null or r.uprn is not null)
        )
        select count(*), count(m.uprn)
        from eligible as e
        left join (select distinct address_key, uprn from linkage.address_match where uprn is not null
                   and match_method <> 'source_uprn_unverified') as m  -- a gazetteer's UPRN, not a source's
          using (address_key)
        """).fetchall()[0]
    return {"records_with_address": with_address, "records_matched": matched,
            "share": matched / with_address if with_address else 0.0}
