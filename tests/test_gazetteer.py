"""The council gazetteer read through its own contract: NLPG DTF records or a flat CSV."""

from pathlib import Path

import pytest

from sources._gazetteer import GazetteerError, load_gazetteer_contract, read_gazetteer

CONTRACTS = Path(__file__).resolve().parent.parent / "sources" / "gazetteer"

DTF = "\r\n".join([
    '10,"TEST COUNCIL",9999,2026-11-01,0,2026-11-01,000000,7.3,F',
    '15,I,1,2001,"MILL ROAD","RIVERSIDE","ASHFORD VALE","ASHFORD VALE",ENG',
    '15,I,2,2002,"OAK CLOSE","","ASHFORD VALE","ASHFORD VALE",ENG',
    '21,I,3,100,1,2,,,400000,300000,1,9999,2000-01-01,,2026-11-01,2000-01-01,D,"AV1 1AA",0',
    '21,I,4,101,1,2,,,400010,300010,1,9999,2000-01-01,,2026-11-01,2000-01-01,D,"AV1 1AA",0',
    '21,I,5,200,1,2,,,400020,300020,1,9999,2000-01-01,,2026-11-01,2000-01-01,D,"AV2 2BB",0',
    # a live house on Mill Road, its historical address (status 8) which must be skipped
    '24,I,6,100,9999L100,ENG,1,2000-01-01,,2026-11-01,2000-01-01,,,,,"",12,,,,"",2001,,Y,Y',
    '24,I,7,100,9999H100,ENG,8,1990-01-01,1999-12-31,2000-01-01,1990-01-01,,,,,"",112,,,,"OLD NAME",2001,,N,N',
    # a flat given by number and suffix only; a care home with a name
    '24,I,8,101,9999L101,ENG,1,2000-01-01,,2026-11-01,2000-01-01,2,A,,,"",12,,,,"",2001,,Y,Y',
    '24,I,9,200,9999L200,ENG,1,2000-01-01,,2026-11-01,2000-01-01,,,,,"",3,,,,"Oak Care Home, Annexe",2002,,Y,Y',
    '32,I,10,100,9999C100,RD04,AddressBase,1.0,2000-01-01,,2026-11-01,2000-01-01',
    '32,I,11,101,9999C101,RD06,AddressBase,1.0,2000-01-01,,2026-11-01,2000-01-01',
    '32,I,12,200,9999C200,RI01,AddressBase,1.0,2000-01-01,,2026-11-01,2000-01-01',
    '99,0,14,2026-11-01,000000',
]) + "\r\n"
LOOKUP = "pcds,wd25cd,wd25nm\nAV1 1AA,E05000001,Riverside\nAV2 2BB,E05000002,Hillside\n"


@pytest.fixture
def reference(tmp_path):
    (tmp_path / "llpg_dtf_20261101.csv").write_text(DTF, encoding="utf-8")
    (tmp_path / "postcode_lookup.csv").write_text(LOOKUP, encoding="utf-8")
    return tmp_path


def test_dtf_gives_one_row_per_live_address_with_street_class_and_ward(reference):
    frame = read_gazetteer(reference, load_gazetteer_contract(CONTRACTS / "nlpg_dtf.yaml"))
    rows = {r["uprn"]: r for r in frame.to_dicts()}
    assert sorted(rows) == [100, 101, 200]
    house, flat, home = rows[100], rows[101], rows[200]
    assert (house["pao_start_number"], house["street_description"], house["locality"], house["postcode"]) == (
        "12", "MILL ROAD", "RIVERSIDE", "AV1 1AA")
    assert house["pao_text"] == "" and house["ward_name"] == "Riverside" and not house["is_communal"]
    assert flat["sao_text"] == "2A" and flat["classification_code"] == "RD06"
    assert home["pao_text"] == "Oak Care Home, Annexe" and home["is_communal"] and home["ward_code"] == "E05000002"


def test_newest_file_is_read_and_absence_is_none(reference, tmp_path_factory):
    contract = load_gazetteer_contract(CONTRACTS / "nlpg_dtf.yaml")
    (reference / "llpg_dtf_20250101.csv").write_text("99,0,1\r\n", encoding="utf-8")  # older and empty
    assert read_gazetteer(reference, contract).height == 3
    assert read_gazetteer(tmp_path_factory.mktemp("empty"), contract) is None


def test_a_file_that_is_not_dtf_is_refused_by_name(tmp_path):
    (tmp_path / "llpg_dtf_20261101.csv").write_text("uprn,postcode\n1,AV1 1AA\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"llpg_dtf_20261101.csv: no BLPU \(21\) or LPI \(24\) records"):
        read_gazetteer(tmp_path, load_gazetteer_contract(CONTRACTS / "nlpg_dtf.yaml"))


def test_a_short_record_is_refused_with_its_line(tmp_path):
    (tmp_path / "llpg_dtf_20261101.csv").write_text(DTF + "21,I\r\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"line 15: record 21 has 1 fields"):
        read_gazetteer(tmp_path, load_gazetteer_contract(CONTRACTS / "nlpg_dtf.yaml"))


def test_quoted_commas_quotes_and_line_breaks_read_as_the_csv_module_reads_them(tmp_path):
    """The fast reader (polars, record type by record type) and Python's csv module agree field by field; a
    quoted value spanning lines sends the file to the csv module, which reads it."""
    from sources._gazetteer import _dtf_records, _dtf_records_by_csv

    contract = load_gazetteer_contract(CONTRACTS / "nlpg_dtf.yaml")
    quoted = DTF.replace('"Oak Care Home, Annexe"', '"The ""Oak"" Care Home, Annexe"')
    path = tmp_path / "llpg_dtf_20261101.csv"
    path.write_text(quoted, encoding="utf-8")
    fast, by_csv = _dtf_records(path, contract), _dtf_records_by_csv(path, contract)
    assert all(fast[record].equals(by_csv[record]) for record in by_csv)
    assert 'The "Oak" Care Home, Annexe' in fast["24"]["pao_text"].to_list()
    path.write_text(quoted.replace('"MILL ROAD"', '"MILL\r\nROAD"'), encoding="utf-8")
    frame = read_gazetteer(tmp_path, contract)
    assert frame.filter(frame["uprn"] == 100)["street_description"].item() == "MILL\r\nROAD"


def test_contract_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nformat: nlpg_dtf\nfile_pattern: '*.csv'\nrecords: {'21': [uprn], '24': [uprn]}\n")
    with pytest.raises(GazetteerError, match=r"bad.yaml: records.24 must name logical_status"):
        load_gazetteer_contract(bad)
    bad.write_text("name: x\nformat: shapefile\nfile_pattern: '*.csv'\n")
    with pytest.raises(GazetteerError, match=r"bad.yaml: format:"):
        load_gazetteer_contract(bad)


def test_flat_csv_contract(tmp_path):
    (tmp_path / "llpg.csv").write_text(
        "uprn,usrn,sao_text,pao_start_number,pao_text,street_description,locality,town_name,postcode,ward_code,"
        "ward_name,classification_code\n100,1,,12,,MILL ROAD,,ASHFORD VALE,AV1 1AA,W1,Riverside,RD04\n"
        "200,2,,3,Oak Care Home,OAK CLOSE,,ASHFORD VALE,AV2 2BB,W2,Hillside,RI01\n", encoding="utf-8")
    frame = read_gazetteer(tmp_path, load_gazetteer_contract(CONTRACTS / "flat_csv.yaml"))
    assert frame["uprn"].to_list() == [100, 200] and frame["is_communal"].to_list() == [False, True]
