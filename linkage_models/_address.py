"""Source address → gazetteer UPRN, in DuckDB SQL.

Rules-first and explainable (docs/adr/0003-address-matching.md): take the UPRN a source carries when the
gazetteer knows it; otherwise candidates share the postcode, or the outward code and the house number
(catching postcode typos), or, for an address given without a postcode, the house number and a street word
anywhere in the gazetteer. A candidate must agree on the flat number (both absent, or equal) and on the
house number when the source gives one, and share a street or building word. The best-scoring candidate
is accepted only when no other candidate scores as well; ambiguous and weak addresses stay unmatched
rather than wrong. The outward-code route is only tried for addresses with no candidate at their postcode.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl

from sources import address_tokens, normalise_postcode, standardise_address
from warehouse import table_exists

GAZETTEER = "linkage.gazetteer"
SOURCE_ADDRESSES = "linkage.source_address"
ADDRESS_MATCH = "linkage.address_match"
# what the last full match was made against (gazetteer file, its contract, these rules): while it holds, a night
# matches only the addresses it has not seen, and reuses the rest
MATCH_BASIS = "linkage.address_match_basis"


GAZETTEER_COLUMNS = ("uprn", "usrn", "sao_text", "pao_start_number", "pao_text", "street_description", "locality",
                     "town_name", "postcode", "ward_code", "ward_name", "classification_code", "is_communal")


def load_gazetteer(con: duckdb.DuckDBPyConnection, gazetteer: Path | pl.DataFrame | None) -> int:
    """Load the gazetteer into the warehouse: a frame read through the gazetteer contract
    (sources._gazetteer.read_gazetteer) or a flat CSV with the gazetteer columns (tests, simple exports). With
    None (no gazetteer) an empty one, so addresses stay unmatched and households are formed from the normalised
    address and postcode instead (docs/adr/0005-households.md)."""
    if gazetteer is None:
        llpg = pl.DataFrame(schema=dict.fromkeys(GAZETTEER_COLUMNS, pl.String))
    elif isinstance(gazetteer, pl.DataFrame):
        llpg = gazetteer.with_columns(pl.col("uprn").cast(pl.String), pl.col("usrn").cast(pl.String),
                                      pl.col("is_communal").cast(pl.String))
    else:
        llpg = pl.read_csv(gazetteer, infer_schema=False)
    text = pl.concat_str(
        [pl.col("sao_text"), pl.col("pao_text"),
         pl.col("pao_start_number") + pl.lit(" ") + pl.col("street_description")],
        separator=" ", ignore_nulls=True,
    )
    frame = llpg.with_columns(
        pl.col("uprn").cast(pl.Int64), pl.col("usrn").cast(pl.Int64),
        pl.col("is_communal").str.to_lowercase().eq("true").alias("is_communal"),
        standardise_address(text).alias("address_std"),
        normalise_postcode(pl.col("postcode")).alias("postcode"),
        pl.col("sao_text").str.extract(r"(\d+)").alias("flat_no"),
        pl.col("pao_start_number").alias("house_no"),
    ).with_columns(address_tokens(pl.col("address_std")).alias("address_tokens"))
    con.execute("create schema if not exists linkage")
    con.register("_llpg", frame)
    con.execute(f"create or replace table {GAZETTEER} as select * from _llpg")
    con.unregister("_llpg")
    return frame.height


_MATCH_SQL = """
create or replace {kind} {target} as
with source_addresses as (
    select
        address_key,
        postcode,
        uprn as source_uprn,
        address_tokens as tokens,
        split_part(postcode, ' ', 1) as outward,
        coalesce(list_position(address_tokens, 'FLAT'), 0) as flat_at,
        case when list_position(address_tokens, 'FLAT') > 0
             then address_tokens[list_position(address_tokens, 'FLAT') + 1] end as flat_no
    from {source}
),
source_parts as (
    select
        *,
        -- the house number is the first number that is not the flat's own ("FLAT 8 8 OAK CLOSE" is
        -- flat 8 of number 8), so skip by position, not by value
        list_filter(list_filter(tokens, lambda t, i: flat_at = 0 or i <> flat_at + 1),
                    lambda t: regexp_matches(t, '^[0-9]+$'))[1] as house_no,
        list_filter(tokens, lambda t: not regexp_matches(t, '^[0-9]+$') and t <> 'FLAT') as words
    from source_addresses
),
gazetteer as (
    select
        uprn, postcode, split_part(postcode, ' ', 1) as outward, flat_no, house_no,
        list_filter(address_tokens, lambda t: not regexp_matches(t, '^[0-9]+$') and t <> 'FLAT') as words
    from linkage.gazetteer
),
by_source_uprn as (
    select s.address_key, s.source_uprn as uprn, 'source_uprn' as match_method, 1.0 as match_score
    from source_parts as s
    where s.source_uprn in (select uprn from gazetteer)
    union all
    -- with no gazetteer at all (an empty one) nothing can verify it, and nothing is better evidence of the home:
    -- the source's UPRN is taken as it is, unscored (with a gazetteer, one it does not know is not trusted)
    select s.address_key, s.source_uprn as uprn, 'source_uprn_unverified' as match_method,
           null::double as match_score
    from source_parts as s
    where s.source_uprn is not null and not exists (select 1 from gazetteer)
),
to_match as (
    select * from source_parts
    where address_key not in (select address_key from by_source_uprn)
),
-- a candidate must agree on the flat, on the house number when the source gives one, and share a word
-- (an address with a house number joins on it: joining on the postcode alone and filtering after compared every
-- property in the postcode with it, which was most of the matching time in a city)
-- (scored where they are found: same postcode 2, same house number 2, one per shared word)
by_postcode as (
    select s.address_key, g.uprn, 4 + len(list_intersect(s.words, g.words)) as score
    from to_match as s join gazetteer as g
        on s.postcode = g.postcode and s.house_no = g.house_no and s.flat_no is not distinct from g.flat_no
    where list_has_any(s.words, g.words)
    union all
    select s.address_key, g.uprn, 2 + len(list_intersect(s.words, g.words)) as score
    from (select * from to_match where house_no is null) as s join gazetteer as g
        on s.postcode = g.postcode and s.flat_no is not distinct from g.flat_no
    where list_has_any(s.words, g.words)
),
-- only an address with no candidate at its own postcode (a mistyped postcode, or one that names another
-- street) looks wider: same outward code and house number. Kept to those few addresses, because an
-- outward code holds thousands of properties.
by_outward as (
    select distinct s.address_key, g.uprn
    from (select address_key, outward, house_no, flat_no, unnest(words) as word from to_match
          where address_key not in (select address_key from by_postcode) and house_no is not null) as s
    join (select uprn, outward, house_no, flat_no, unnest(words) as word from gazetteer) as g
        on s.outward = g.outward and s.house_no = g.house_no and s.word = g.word
    where s.flat_no is not distinct from g.flat_no
),
-- an address with no postcode at all looks town-wide: same house number and flat, and a word of the gazetteer's
-- that names few properties (a street's own name, not ROAD or the town: a word on more than 1 in 100 properties
-- of a large gazetteer would join thousands), so the join stays the size of the likely streets
distinctive as (
    select word from (select unnest(words) as word from gazetteer)
    group by word
    having count(*) <= greatest(0.01 * (select count(*) from gazetteer), 100)
),
by_town as (
    select distinct s.address_key, g.uprn
    from (select address_key, house_no, flat_no, unnest(words) as word from to_match
          where postcode is null and house_no is not null) as s
    semi join distinctive using (word)
    join (select uprn, house_no, flat_no, unnest(words) as word from gazetteer) as g
        on s.house_no = g.house_no and s.word = g.word
    where s.flat_no is not distinct from g.flat_no
),
candidates as (
    select address_key, uprn, score from by_postcode
    union all
    select
        s.address_key,
        g.uprn,
        coalesce(s.postcode = g.postcode, false)::int * 2
            + (s.house_no is not null and s.house_no = g.house_no)::int * 2
            + len(list_intersect(s.words, g.words)) as score
    from (select * from by_outward union all select * from by_town) as c
    join to_match as s using (address_key)
    join gazetteer as g using (uprn)
),
-- each address's best score, how many candidates reach it and one of them (grouped: two windows over every
-- candidate took a quarter of the matching time at 1M records)
by_score as (
    select address_key, score, count(*) as same_score, any_value(uprn) as uprn from candidates group by all
),
by_model as (
    select address_key, best.uprn, 'rules' as match_method, least(1.0, best.score / 6.0) as match_score
    from (select address_key, max_by(by_score, score) as best from by_score group by address_key)
    where best.same_score = 1 and best.score >= 3
),
matched as (
    select * from by_source_uprn
    union all
    select * from by_model
)
select
    s.address_key,
    m.uprn,
    coalesce(m.match_method, 'unmatched') as match_method,
    m.match_score
from {source} as s
left join matched as m using (address_key)
"""


def gazetteer_basis(contract_path: Path, gazetteer_path: Path | None) -> str:
    """A digest of everything an address's match depends on besides the address itself: the gazetteer file, its
    contract, the rules here and the standardisation both sides go through."""
    import sources._standardise as standardise

    digest = hashlib.sha256()
    for path in (Path(__file__), Path(standardise.__file__), Path(contract_path)):
        digest.update(path.read_bytes())
    if gazetteer_path is not None and Path(gazetteer_path).is_file():
        with Path(gazetteer_path).open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    else:
        digest.update(b"no gazetteer")
    return digest.hexdigest()


def matched_basis(con: duckdb.DuckDBPyConnection) -> str | None:
    """The basis the warehouse's gazetteer and address matches were made on (None: never, or unknown)."""
    if not all(table_exists(con, t) for t in (MATCH_BASIS, ADDRESS_MATCH, GAZETTEER)):
        return None
    row = con.execute(f"select basis from {MATCH_BASIS}").fetchone()
    return row[0] if row else None


def match_addresses(con: duckdb.DuckDBPyConnection, basis: str | None = None) -> dict[str, int]:
    """Match every distinct staged address; writes linkage.address_match. Returns counts by method.

    With a `basis` (gazetteer_basis) equal to the one the last match was made on, the addresses matched then
    keep their match and only new ones are matched: a match depends on the address and the gazetteer alone.
    Addresses no longer staged drop out either way (an erased record's address goes with the next run)."""
    con.execute(
        f"""
        create or replace table {SOURCE_ADDRESSES} as
        select distinct
            address_key(address_std, postcode, uprn) as address_key,
            any_value(address_std) as address_std,
            any_value(address_tokens) as address_tokens,
            any_value(postcode) as postcode,
            any_value(uprn) as uprn
        from staging.person_record
        where not coalesce(no_fixed_abode, false) and (address_std is not null or uprn is not null)
        group by 1
        """
    )
    if basis is not None and matched_basis(con) == basis:
        con.execute(f"create or replace temp table _known_match as select m.* from {ADDRESS_MATCH} as m "
                    f"semi join {SOURCE_ADDRESSES} using (address_key)")
        con.execute(f"create or replace temp table _new_address as select * from {SOURCE_ADDRESSES} "
                    f"anti join _known_match using (address_key)")
        con.execute(_MATCH_SQL.format(kind="temp table", target="_new_match", source="_new_address"))
        con.execute(f"create or replace table {ADDRESS_MATCH} as select * from _known_match "
                    f"union all by name select * from _new_match")
        con.execute("drop table _known_match; drop table _new_address; drop table _new_match")
    else:
        con.execute(_MATCH_SQL.format(kind="table", target=ADDRESS_MATCH, source=SOURCE_ADDRESSES))
    con.execute(f"create or replace table {MATCH_BASIS} as select ?::varchar as basis", [basis])
    return dict(con.execute(f"select match_method, count(*) from {ADDRESS_MATCH} group by 1").fetchall())
