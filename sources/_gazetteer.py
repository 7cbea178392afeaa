"""The council gazetteer (LLPG), read through its own contract.

A gazetteer contract (sources/gazetteer/*.yaml) says how the council exports its LLPG: the NLPG Data Transfer
Format (one CSV, no header, a record identifier first: 15 street descriptor, 21 BLPU, 24 LPI, 32
classification) or one flat CSV with a header. Either way the result is one row per live address with the
columns address matching needs: uprn, usrn, sao_text, pao_start_number, pao_text, street_description,
locality, town_name, postcode, ward_code, ward_name, classification_code, is_communal.

Errors name the file, the line and the field; they never quote an address.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

GAZETTEER_COLUMNS = ("uprn", "usrn", "sao_text", "pao_start_number", "pao_text", "street_description", "locality",
                     "town_name", "postcode", "ward_code", "ward_name", "classification_code")


class GazetteerError(ValueError):
    """The gazetteer or its contract is unusable; the message names the file (and line or key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WardLookup(_Strict):
    file_pattern: str
    postcode: str
    ward_code: str
    ward_name: str


class GazetteerContract(_Strict):
    name: str
    format: Literal["nlpg_dtf", "csv"]
    file_pattern: str = Field(description="glob in the reference folder; the newest by name is read")
    encoding: str = "utf-8"
    records: dict[str, list[str]] | None = Field(default=None, description="DTF: field names by record type")
    columns: dict[str, str] | None = Field(default=None, description="CSV: familylink name -> file column")
    live_status: list[str] = ["1"]
    communal_class_prefixes: list[str] = ["RI"]
    wards: WardLookup | None = None


def load_gazetteer_contract(path: Path) -> GazetteerContract:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        contract = GazetteerContract.model_validate(raw)
    except FileNotFoundError:
        raise GazetteerError(f"{path}: gazetteer contract not found") from None
    except yaml.YAMLError as error:
        raise GazetteerError(f"{path}: not valid YAML ({type(error).__name__})") from None
    except ValidationError as error:
        first = error.errors()[0]
        raise GazetteerError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if contract.format == "nlpg_dtf":
        needed = {"21": {"uprn"}, "24": {"uprn", "logical_status", "sao_text", "pao_start_number", "pao_text", "usrn"},
                  "15": {"usrn", "street_description", "town_name"}}
        for record, fields in needed.items():
            missing = fields - set((contract.records or {}).get(record, []))
            if missing:
                raise GazetteerError(f"{path}: records.{record} must name {', '.join(sorted(missing))}")
    elif not contract.columns or {"uprn", "postcode"} - set(contract.columns):
        raise GazetteerError(f"{path}: columns must map at least uprn and postcode")
    return contract


def find_gazetteer(reference_dir: Path, contract: GazetteerContract) -> Path | None:
    files = sorted(Path(reference_dir).glob(contract.file_pattern)) if Path(reference_dir).is_dir() else []
    return files[-1] if files else None


def read_gazetteer(reference_dir: Path, contract: GazetteerContract) -> pl.DataFrame | None:
    """The live addresses of the newest gazetteer file, or None when the reference folder has none."""
    path = find_gazetteer(reference_dir, contract)
    if path is None:
        return None
    frame = _read_dtf(path, contract) if contract.format == "nlpg_dtf" else _read_flat(path, contract)
    if contract.wards is not None:
        frame = _with_wards(frame, Path(reference_dir), contract.wards)
    for name in GAZETTEER_COLUMNS:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    prefixes = contract.communal_class_prefixes
    communal = pl.any_horizontal([pl.col("classification_code").fill_null("").str.starts_with(p) for p in prefixes]) \
        if prefixes else pl.lit(False)
    return frame.select(
        pl.col("uprn").cast(pl.Int64, strict=False), pl.col("usrn").cast(pl.Int64, strict=False),
        *[pl.col(c).cast(pl.String).fill_null("") for c in GAZETTEER_COLUMNS[2:]],
        communal.alias("is_communal"),
    ).filter(pl.col("uprn").is_not_null()).unique("uprn", keep="first", maintain_order=True)


def _dtf_records(path: Path, contract: GazetteerContract) -> dict[str, pl.DataFrame]:
    """Each record type the contract names, as a frame of its fields (missing trailing fields empty).

    A DTF file mixes record types of different widths in one headerless CSV. Lines are split by record type
    and each type is read by polars' CSV reader (a Python csv loop took ≈5 s of a city's 88 MB gazetteer on
    every nightly run). A quoted field that spans lines is legal CSV: a file with one is read record by
    record with Python's csv module instead."""
    layouts = contract.records or {}
    try:
        text = path.read_bytes().decode(contract.encoding)
    except UnicodeDecodeError as error:
        raise GazetteerError(f"{path.name}: not {contract.encoding} text at byte {error.start}") from None
    lines = pl.DataFrame({"line": text.split("\n")}).with_row_index("line_no", offset=1).with_columns(
        pl.col("line").str.strip_suffix("\r"))
    del text
    if lines.select(pl.col("line").str.count_matches('"').mod(2).eq(1).any()).item():
        return _dtf_records_by_csv(path, contract)
    lines = lines.with_columns(pl.col("line").str.extract(r"^([^,]*)").alias("record")).filter(
        pl.col("record").is_in(list(layouts)))
    # fields on the line, counting commas outside quoted values ("" inside a quoted value is two quotes)
    lines = lines.with_columns((pl.col("line").str.replace_all(r'"[^"]*"', "").str.count_matches(",")
                                .cast(pl.Int64) + 1).alias("fields"))
    frames = {}
    for record, names in layouts.items():
        width = len(names)
        rows = lines.filter(pl.col("record") == record)
        short = rows.filter(pl.col("fields") - 1 < min(width, 3))
        if short.height:
            first = short.row(0, named=True)
            raise GazetteerError(f"{path.name}: line {first['line_no']}: record {record} has {first['fields'] - 1} fields, "
                                 f"the contract names {width}")
        if rows.is_empty():
            frames[record] = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
            continue
        # pad short lines to the contract's width; longer ones are cut to it
        padded = rows.select(pl.col("line") + pl.lit("," * (width + 1)).str.slice(
            0, (width + 1 - pl.col("fields")).clip(0)))
        try:
            read = pl.read_csv("\n".join(padded["line"]).encode("utf-8"), has_header=False, infer_schema=False,
                               new_columns=["_record", *names], truncate_ragged_lines=True)
        except pl.exceptions.PolarsError as error:
            raise GazetteerError(f"{path.name}: record {record}: cannot read as CSV ({type(error).__name__})") from None
        frames[record] = read.drop("_record").with_columns(pl.all().fill_null(""))
    return frames


def _dtf_records_by_csv(path: Path, contract: GazetteerContract) -> dict[str, pl.DataFrame]:
    layouts = contract.records or {}
    rows: dict[str, list[list[str]]] = {record: [] for record in layouts}
    try:
        with path.open(encoding=contract.encoding, newline="") as handle:
            for line_no, fields in enumerate(csv.reader(handle), start=1):
                if not fields or fields[0] not in rows:
                    continue
                width = len(layouts[fields[0]])
                if len(fields) - 1 < min(width, 3):
                    raise GazetteerError(f"{path.name}: line {line_no}: record {fields[0]} has {len(fields) - 1} "
                                         f"fields, the contract names {width}")
                values = fields[1:width + 1]
                rows[fields[0]].append(values + [""] * (width - len(values)))
    except UnicodeDecodeError as error:
        raise GazetteerError(f"{path.name}: not {contract.encoding} text at byte {error.start}") from None
    except csv.Error as error:
        raise GazetteerError(f"{path.name}: line {handle.line_num}: {error}") from None
    return {record: pl.DataFrame(values, schema=layouts[record], orient="row") for record, values in rows.items()}


def _read_dtf(path: Path, contract: GazetteerContract) -> pl.DataFrame:
    frames = _dtf_records(path, contract)
    if frames["21"].is_empty() or frames["24"].is_empty():
        raise GazetteerError(f"{path.name}: no BLPU (21) or LPI (24) records: is this an NLPG DTF file?")
    lpi = frames["24"].filter(pl.col("logical_status").is_in(contract.live_status)).select(
        "uprn", "usrn", "sao_text", "pao_start_number", "pao_text",
        *[c for c in ("sao_start_number", "sao_start_suffix", "pao_start_suffix") if c in frames["24"].columns])
    blpu = frames["21"].select("uprn", *[c for c in ("postcode_locator", "x_coordinate", "y_coordinate")
                                         if c in frames["21"].columns])
    blpu = blpu.rename({"postcode_locator": "postcode"}) if "postcode_locator" in blpu.columns else blpu
    streets = frames["15"].unique("usrn", keep="first", maintain_order=True).select(
        "usrn", "street_description", *[c for c in ("locality", "town_name") if c in frames["15"].columns])
    out = lpi.join(blpu, on="uprn", how="left", maintain_order="left").join(
        streets, on="usrn", how="left", maintain_order="left")
    if "32" in frames and not frames["32"].is_empty():
        classes = frames["32"].unique("uprn", keep="last", maintain_order=True).select("uprn", "classification_code")
        out = out.join(classes, on="uprn", how="left", maintain_order="left")
    # a flat given as a number only (SAO start number 2, suffix A) becomes "2A"
    if "sao_start_number" in out.columns:
        sao_number = pl.concat_str([pl.col("sao_start_number"), pl.col("sao_start_suffix").fill_null("")])
        out = out.with_columns(pl.when(pl.col("sao_text") == "").then(sao_number).otherwise(pl.col("sao_text"))
                               .alias("sao_text"))
    if "pao_start_suffix" in out.columns:
        out = out.with_columns((pl.col("pao_start_number") + pl.col("pao_start_suffix").fill_null(""))
                               .alias("pao_start_number"))
    return out


def _read_flat(path: Path, contract: GazetteerContract) -> pl.DataFrame:
    try:
        raw = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy" if contract.encoding.lower() in (
            "utf-8", "utf8") else contract.encoding)
    except pl.exceptions.PolarsError as error:
        raise GazetteerError(f"{path.name}: cannot read as CSV ({type(error).__name__})") from None
    columns = contract.columns or {}
    missing = [source for source in columns.values() if source not in raw.columns]
    if missing:
        raise GazetteerError(f"{path.name}: column {missing[0]} named by the gazetteer contract is not in the file")
    return raw.select([pl.col(source).alias(name) for name, source in columns.items()])


def _with_wards(frame: pl.DataFrame, reference_dir: Path, wards: WardLookup) -> pl.DataFrame:
    files = sorted(reference_dir.glob(wards.file_pattern))
    if not files:
        return frame
    lookup = pl.read_csv(files[-1], infer_schema=False)
    for column in (wards.postcode, wards.ward_code, wards.ward_name):
        if column not in lookup.columns:
            raise GazetteerError(f"{files[-1].name}: column {column} named by the gazetteer contract is not in the file")
    lookup = lookup.select(pl.col(wards.postcode).str.to_uppercase().str.replace_all(" ", "").alias("_pc"),
                           pl.col(wards.ward_code).alias("ward_code"), pl.col(wards.ward_name).alias("ward_name"))
    keyed = frame.drop([c for c in ("ward_code", "ward_name") if c in frame.columns]).with_columns(
        pl.col("postcode").str.to_uppercase().str.replace_all(" ", "").alias("_pc"))
    return keyed.join(lookup.unique("_pc", keep="first"), on="_pc", how="left", maintain_order="left").drop("_pc")
