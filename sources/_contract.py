"""Source contracts: one YAML file per agency extract, validated when loaded.

A contract says where the extract is, how to read it, how its columns map onto the canonical schema
(sources/canonical.py), and the information-sharing terms it arrives under. Onboarding a new extract
is a new YAML file, not new code. See sources/README.md for every key.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from sources import canonical


class ContractError(ValueError):
    """A contract is wrong; the message names the file and the key."""

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)


class ExtractNameError(ValueError):
    """A file the contract's file_pattern matches whose name gives no extract date: it is not taken as the
    source's extract. The message names the file (by its name only) and the contract key, never a value."""

    message_is_safe = True

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path.name}: {reason}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _python_regex(pattern: str) -> re.Pattern:
    """A regex of a contract, compiled; a wrong one is a ValueError the contract error names by file and key."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc.msg} at position {exc.pos}") from None


# the format a date field without `formats` is read with (sources/_mapping.py)
DEFAULT_DATE_FORMATS = ("%Y-%m-%d",)


class FieldSpec(_Strict):
    """Where one canonical value comes from."""

    column: str | None = None
    columns: list[str] | None = Field(default=None, description="joined with `separator`, empties skipped")
    separator: str = ", "
    value: str | None = Field(default=None, description="a constant")
    formats: list[str] | None = Field(default=None, description=(
        "strftime patterns for dates, tried in order (default DEFAULT_DATE_FORMATS)"))
    values: dict[str, str] | None = Field(default=None, description="recode source values (after trimming)")
    default: str | None = Field(default=None, description="value when `values` has no entry")
    list_separator: str | None = Field(default=None, description="split into a list (aliases)")
    no_fixed_abode_values: list[str] | None = Field(default=None, description="address values meaning NFA")

    @model_validator(mode="after")
    def _one_origin(self) -> "FieldSpec":
        origins = [x is not None for x in (self.column, self.columns, self.value)]
        if sum(origins) != 1:
            raise ValueError("give exactly one of column, columns or value")
        return self

    def source_columns(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


class Condition(_Strict):
    column: str
    not_empty: bool | None = None
    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None


_PERSON_FIELDS = set(canonical.PERSON_RECORD) - {
    "source", "record_id", "extract_date", "file_sha256", "row_number", "record_role", "first_name_std",
    "first_name_formal", "middle_names_std", "last_name_std", "address_std", "address_tokens", "quality_flags",
}
_SPECIAL_PERSON_FIELDS = {"full_name", "surname_first_name", "forenames"}


class PersonMapping(_Strict):
    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _known_fields(self) -> "PersonMapping":
        unknown = set(self.model_extra or {}) - _PERSON_FIELDS - _SPECIAL_PERSON_FIELDS
        if unknown:
            raise ValueError(f"unknown canonical field(s) {sorted(unknown)}; allowed: "
                             f"{sorted(_PERSON_FIELDS | _SPECIAL_PERSON_FIELDS)}")
        # validated as one mapping, so an error's location names the field: person.date_of_birth.colum
        _FIELD_SPECS.validate_python(self.model_extra or {})
        return self

    def fields(self) -> dict[str, FieldSpec]:
        return {k: FieldSpec.model_validate(v) for k, v in (self.model_extra or {}).items()}


_FIELD_SPECS = TypeAdapter(dict[str, FieldSpec])


class RelatedPerson(_Strict):
    role: str
    record_id_suffix: str
    relationship: Literal["parent_of", "child_of", "partner_of", "household_member_of"]
    person: PersonMapping


class Involvement(_Strict):
    agency: str
    service: FieldSpec
    worker_name: FieldSpec | None = None
    worker_role: FieldSpec | None = None
    worker_phone: FieldSpec | None = None
    worker_email: FieldSpec | None = None
    start_date: FieldSpec | None = None
    end_date: FieldSpec | None = None
    when: Condition | None = None


class Event(_Strict):
    event_type: FieldSpec
    event_date: FieldSpec | None = None
    value: FieldSpec | None = None
    detail: FieldSpec | None = None
    when: Condition | None = None


class StatedRelationships(_Strict):
    """Relationships stated against an anchor record of a group (housing: each member to the lead tenant)."""

    group_by: str
    anchor: Condition
    relationship_column: str
    values: dict[str, Literal["parent_of", "child_of", "partner_of", "household_member_of"]]


class ExtractDate(_Strict):
    from_file_name: str | None = Field(default=None, description="regex with a named group `date`")
    format: str = "%Y%m%d"

    @field_validator("from_file_name")
    @classmethod
    def _date_group(cls, value: str | None) -> str | None:
        if value is not None and "date" not in _python_regex(value).groupindex:
            raise ValueError(r"the regex needs a named group `date`, e.g. 'extract_(?P<date>\d{8})'")
        return value


class Sharing(_Strict):
    owning_organisation: str
    lawful_basis: str
    retention_days: int = Field(gt=0)
    restricted_fields: list[str] = Field(default_factory=list)
    dsa_reference: str | None = None


FIXED_IDENTIFIERS = ("nhs_number", "ni_number", "upn", "pnc_id", "crn", "uprn", "tenancy_ref", "local_id")
# identifiers that mean something only inside the agency that issued them
_LOCAL_BY_DEFAULT = {"tenancy_ref", "local_id"}
CHECK_RULES = ("modulus_11", "nhs_number", "ni_number", "upn", "pnc_id", "crn")


class Identifier(_Strict):
    """An identifier the extract carries, of any name.

    The eight canonical identifiers (FIXED_IDENTIFIERS) take their value from the person mapping; any other
    name gives its own column (or columns/value). `check` rejects malformed values (nulled and flagged,
    never the row); `scope: local` means the value is only unique inside this agency, so it is compared
    between this source's own records only.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    column: str | None = None
    columns: list[str] | None = None
    separator: str = ""
    value: str | None = None
    check: Literal["modulus_11", "nhs_number", "ni_number", "upn", "pnc_id", "crn"] | None = None
    pattern: str | None = Field(default=None, description="regex the normalised value must match")
    scope: Literal["national", "local"] | None = None

    @model_validator(mode="after")
    def _origin(self) -> "Identifier":
        origins = sum(x is not None for x in (self.column, self.columns, self.value))
        if self.name in FIXED_IDENTIFIERS and origins:
            raise ValueError(f"{self.name} is a canonical field: map it under person, not here")
        if self.name not in FIXED_IDENTIFIERS and origins != 1:
            raise ValueError(f"identifier {self.name}: give exactly one of column, columns or value")
        return self

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        """Values are matched by polars (Rust regex), which lacks look-around and backreferences."""
        if value is None:
            return value
        _python_regex(value)
        try:
            pl.Series([""], dtype=pl.String).str.contains(value)
        except pl.exceptions.PolarsError:
            raise ValueError("a regular expression polars cannot use (look-around and backreferences are not "
                             "supported)") from None
        return value

    @property
    def effective_scope(self) -> str:
        return self.scope or ("local" if self.name in _LOCAL_BY_DEFAULT else "national")

    def field_spec(self) -> FieldSpec | None:
        if self.name in FIXED_IDENTIFIERS:
            return None
        return FieldSpec(column=self.column, columns=self.columns, value=self.value, separator=self.separator)


class Attribute(_Strict):
    """A descriptive value the extract carries that two records of one person share more often than strangers
    do — a place of birth, an occupation, a school, a GP practice, a first language — of any name.

    Not an identifier: many people share it, so it is compared with term frequencies (a rare value is strong
    evidence, a common one weak), never blocked on alone, never enough for a record to be linkable, never
    searchable. The model compares it when two or more sources carry it (or one source, deduplicated).
    Values are compared after upper-casing and collapsing punctuation and spaces.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    column: str | None = None
    columns: list[str] | None = None
    separator: str = " "
    value: str | None = None
    values: dict[str, str] | None = Field(default=None, description="recode source values (after trimming)")

    def field_spec(self) -> FieldSpec:
        return FieldSpec(column=self.column, columns=self.columns, value=self.value, separator=self.separator,
                         values=self.values)


class MinimumData(_Strict):
    """What a record needs to be linkable: a name and at least one of `any_of` (else quarantined)."""

    name: bool = True
    any_of: list[Literal["date_of_birth", "identifier", "address", "postcode", "phone", "email"]] = Field(
        default_factory=lambda: ["date_of_birth", "identifier", "address", "postcode", "phone", "email"])


class DateOfBirthBounds(_Strict):
    earliest: dt.date = dt.date(1900, 1, 1)
    max_age_years: int | None = Field(default=None, ge=1, description="older than this is out of bounds")


class SourceContract(_Strict):
    source: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    agency: str
    description: str | None = None
    file_pattern: str
    format: Literal["csv", "xlsx", "parquet", "jsonl"]
    encoding: str = "utf-8"
    delimiter: str = ","
    header_row: int = Field(default=1, ge=1)
    sheet: str | None = None
    record_key: str
    extract_date: ExtractDate = ExtractDate()
    required_columns: list[str] | None = None
    columns: list[str] | None = Field(
        default=None, description="the complete header the agency agreed to send; any other column is an error")
    trust_rank: int = Field(ge=1)
    identifiers: list[Identifier] = []
    attributes: list[Attribute] = []
    minimum_data: MinimumData = MinimumData()
    date_of_birth_bounds: DateOfBirthBounds = DateOfBirthBounds()
    max_quarantined_share: float = Field(default=0.5, ge=0, le=1, description=(
        "an extract with a larger share of its rows quarantined is rejected whole"))
    min_filled_share: float = Field(default=0.01, ge=0, le=1, description=(
        "an extract in which a mapped column is filled on fewer of its rows is rejected whole, where the current "
        "extract had it on at least filled_before_share (0 turns the check off)"))
    filled_before_share: float = Field(default=0.5, ge=0, le=1, description=(
        "how full a mapped column must be in the current extract for min_filled_share to apply"))
    sharing: Sharing
    person: PersonMapping
    related_persons: list[RelatedPerson] = []
    involvements: list[Involvement] = []
    events: list[Event] = []
    stated_relationships: StatedRelationships | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            known = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}: use one Python knows, such as utf-8, utf-8-sig "
                             "(with a byte order mark), cp1252 or latin-1") from None
        if not known._is_text_encoding:
            raise ValueError(f"{value!r} is not a text encoding")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        # both CSV parsers split on one single-byte character
        if len(value) != 1 or len(value.encode("utf-8")) != 1 or value in "\"\r\n":
            raise ValueError(f"the delimiter must be exactly one character (a single-byte one, not a quote or a "
                             f"line break), not {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _identifier_names(cls, data):
        """`identifiers: [upn, {name: soc_sec_id, column: ssn}]`: a bare name is a canonical identifier."""
        if isinstance(data, dict) and isinstance(data.get("identifiers"), list):
            data = {**data, "identifiers": [{"name": i} if isinstance(i, str) else i for i in data["identifiers"]]}
        return data

    @model_validator(mode="after")
    def _attribute_names(self) -> "SourceContract":
        names = [a.name for a in self.attributes]
        clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & {i.name for i in self.identifiers}))
        if clashes:
            raise ValueError(f"attributes {', '.join(clashes)}: each name once, and not also an identifier")
        return self

    def declared_identifiers(self) -> list[Identifier]:
        """Declared identifiers plus canonical identifier fields the person mapping fills but did not declare."""
        declared = {i.name: i for i in self.identifiers}
        for name in self.person.fields():
            if name in FIXED_IDENTIFIERS and name != "uprn" and name not in declared:
                declared[name] = Identifier(name=name)
        return list(declared.values())

    def required_source_columns(self) -> list[str]:
        if self.required_columns is not None:
            return list(self.required_columns)
        return self.mapped_source_columns()

    def mapped_source_columns(self) -> list[str]:
        """Every source column the contract reads: the record key and the columns its mapping uses."""
        cols = {self.record_key}
        specs: list[FieldSpec] = list(self.person.fields().values())
        for related in self.related_persons:
            specs += list(related.person.fields().values())
        for inv in self.involvements:
            specs += [s for s in (inv.service, inv.worker_name, inv.worker_role, inv.worker_phone, inv.worker_email,
                                  inv.start_date, inv.end_date) if s]
        for ev in self.events:
            specs += [s for s in (ev.event_type, ev.event_date, ev.value, ev.detail) if s]
        specs += [s for s in (i.field_spec() for i in self.identifiers) if s is not None and s.value is None]
        specs += [a.field_spec() for a in self.attributes if a.value is None]
        for spec in specs:
            cols.update(spec.source_columns())
        conditions = [i.when for i in self.involvements] + [e.when for e in self.events]
        cols.update(c.column for c in conditions if c is not None)
        if self.stated_relationships is not None:
            rules = self.stated_relationships
            cols.update({rules.group_by, rules.anchor.column, rules.relationship_column})
        return sorted(cols)

    @model_validator(mode="after")
    def _columns_cover_mapping(self) -> "SourceContract":
        if self.columns is not None:
            unmapped = sorted(set(self.required_source_columns()) - set(self.columns))
            if unmapped:
                raise ValueError(f"columns: the mapping uses {unmapped}, which the declared header lacks")
        return self

    def extract_date_for(self, path: Path, frame: pl.DataFrame | None = None) -> dt.date | None:
        """The extract's date: from its file name when the contract says how (a name that gives none is an
        ExtractNameError: that file is not an extract of this source), else the file's modification date."""
        path = Path(path)
        rule = self.extract_date
        if not rule.from_file_name:
            return dt.date.fromtimestamp(path.stat().st_mtime)
        match = re.search(rule.from_file_name, path.name)
        text = match.group("date") if match else None
        if text is None:
            raise ExtractNameError(path, f"the file name does not match extract_date.from_file_name "
                                         f"({rule.from_file_name}), so it gives no extract date")
        try:
            return dt.datetime.strptime(text, rule.format).date()
        except ValueError:
            raise ExtractNameError(path, f"file name date {text} is not a date in format {rule.format}") from None


def _format_errors(path: Path, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        keys = [str(p) for p in error["loc"] if not str(p).startswith("function-after")]
        message = error["msg"]
        if error["type"] == "extra_forbidden" and keys:  # a mistyped key: say which block it sits in
            keys, message = keys[:-1], f"unknown key {keys[-1]!r}"
        elif error["type"] == "value_error":  # our validators' own words, without pydantic's "Value error, "
            message = str(error.get("ctx", {}).get("error", message))
        parts.append(f"{path}: {'.'.join(keys) or '(top level)'}: {message}")
    return "; ".join(parts)


def load_contract(path: Path) -> SourceContract:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: contract file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ContractError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: a contract must be a mapping of keys to values")
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}  # x- keys hold YAML anchors
    try:
        return SourceContract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(_format_errors(path, exc)) from None


def load_contracts(folder: Path) -> dict[str, SourceContract]:
    folder = Path(folder)
    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not paths:
        raise ContractError(f"{folder}: no source contracts (*.yaml) found")
    contracts: dict[str, SourceContract] = {}
    for path in paths:
        contract = load_contract(path)
        if contract.source in contracts:
            raise ContractError(f"{path}: source: {contract.source!r} is already defined by another contract")
        contracts[contract.source] = contract
    return contracts


def dated_extracts(landing: Path, contract: SourceContract
                   ) -> tuple[list[tuple[dt.date, Path]], list[ExtractNameError]]:
    """The files a contract's file_pattern matches: those with an extract date, and (one error each, naming the
    file) those whose name gives none under extract_date.from_file_name, which are not taken as extracts."""
    dated, misnamed = [], []
    for path in sorted(p for p in Path(landing).glob(contract.file_pattern) if p.is_file()):
        try:
            dated.append((contract.extract_date_for(path), path))
        except ExtractNameError as exc:
            misnamed.append(exc)
    return dated, misnamed


def find_extract(landing: Path, contract: SourceContract) -> Path | None:
    """The newest extract for a contract: the latest date in the file name (or modification time). A file whose
    name gives no date is never the newest (dated_extracts lists those)."""
    dated, _ = dated_extracts(landing, contract)
    if not dated:
        return None
    return max(dated, key=lambda d: (d[0], d[1].name))[1]
