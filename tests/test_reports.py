"""medmo_data.families.reports: MIMIC sectioning (official section_parser rules), OpenI XML, report join, prompts."""

from pathlib import Path

import pytest

from medmo_data.families.reports import (
    CAPTION_PROMPTS,
    REPORT_PROMPTS,
    hash_split,
    join_report,
    mimic_sections,
    openi_report,
    pick,
    report_messages,
    section_name,
    split_sections,
)
from tests.fixtures.iu_xray import openi_xml

REAL = Path(__file__).parent / "data" / "real"


def test_real_mimic_example_report():
    text = (REAL / "mimic_cxr" / "example_report_from_mimic_cxr_website.txt").read_text()
    sec = mimic_sections(text)
    assert sec["findings"] == (
        "Cardiac size cannot be evaluated. Large left pleural effusion is new. Small right effusion is new. "
        "The upper lungs are clear. Right lower lobe opacities are better seen in prior CT. There is no "
        "pneumothorax. There are mild degenerative changes in the thoracic spine")
    assert sec["impression"] == "Large left pleural effusion"
    assert sec["indication"] == "___ year old woman with ?pleural effusion // ?pleural effusion"  # ___ kept
    assert sec["comparison"] == "___"
    assert sec["examination"] == "CHEST (PA AND LAT)"
    assert [n for n, _ in split_sections(text)] == ["preamble", "examination", "indication", "technique",
                                                    "comparison", "findings", "impression"]


@pytest.mark.parametrize("header,name", [
    ("CONCLUSION", "impression"), ("FINDINGS AND IMPRESSION", "impression"), ("IMPRESSON", "impression"),
    ("FINDING", "findings"), ("PA AND LATERAL VIEWS OF THE CHEST", "findings"), ("REASON FOR EXAM", "indication"),
    ("COMPARISONS", "comparison"), ("RECOMMENDATION(S)", "recommendations"), ("TECHNIQUE", "technique"),
    ("FINAL ADDENDUM", "addendum"), ("WET READ", "wet read"), ("OTHER", "other"),
])
def test_section_names_fold_like_the_official_parser(header, name):
    assert section_name(header) == name


def test_last_section_of_a_name_wins_and_empty_findings_dropped():
    text = " FINAL REPORT\n FINDINGS:  \n \n IMPRESSION:  First.\n \n IMPRESSION:  Second one.\n"
    sec = mimic_sections(text)
    assert "findings" not in sec
    assert sec["impression"] == "Second one."


def test_header_needs_newline_and_one_space():
    # A colon inside a sentence or a header without the leading space is not a section.
    sec = mimic_sections(" FINAL REPORT\nFINDINGS: not a header\n \n Lungs: clear.\n \n Last paragraph here.")
    assert "findings" not in sec and "impression" not in sec
    # As in section_parser.py: everything after the FIRST blank line of the last section.
    assert sec["last_paragraph"] == "Lungs: clear. Last paragraph here."
    assert sec["full report"] == "FINAL REPORT FINDINGS: not a header"


def test_join_report():
    assert join_report(" A.\n B. ", "C.") == "A. B.\n\nC."
    assert join_report("", "C.") == "C."
    assert join_report("A.", None) == "A."
    assert join_report("", "  ") == ""


def test_openi_xml_sections_images_and_mesh():
    xml = openi_xml(12, {"COMPARISON": "None.", "INDICATION": "XXXX-year-old with cough",
                         "FINDINGS": "", "IMPRESSION": "No acute  disease."},
                    [("CXR12_1_IM-0157-1001", "Xray Chest PA and Lateral"), ("CXR12_2_IM-0157-2001", "Lateral")],
                    ["normal"])
    rep = openi_report(xml.encode())
    assert (rep.uid, rep.findings, rep.impression) == ("CXR12", "", "No acute disease.")
    assert rep.indication == "XXXX-year-old with cough"
    assert rep.images == ["CXR12_1_IM-0157-1001", "CXR12_2_IM-0157-2001"]
    assert rep.captions == ["Xray Chest PA and Lateral", "Lateral"]
    assert rep.mesh == ["normal"]
    with pytest.raises(ValueError, match="not well-formed"):
        openi_report(b"<eCitation><uId id='CXR1'/>")
    with pytest.raises(ValueError, match="uId"):
        openi_report(b"<eCitation/>")


def test_prompts_are_stable_and_spread():
    assert pick(REPORT_PROMPTS, "s50414267") == pick(REPORT_PROMPTS, "s50414267")
    assert len({pick(CAPTION_PROMPTS, f"k{i}") for i in range(50)}) == len(CAPTION_PROMPTS)
    msgs = report_messages("R.", "k", 2, "Indication: cough")
    assert [p["type"] for p in msgs[0]["content"]] == ["image", "image", "text"]
    assert msgs[0]["content"][2]["text"] == f"Indication: cough\n\n{pick(REPORT_PROMPTS, 'k')}"
    assert msgs[1] == {"role": "assistant", "content": [{"type": "text", "text": "R."}]}


def test_hash_split_is_stable_and_roughly_proportional():
    splits = [hash_split(f"CXR{i}") for i in range(4000)]
    assert splits == [hash_split(f"CXR{i}") for i in range(4000)]
    assert 0.16 < splits.count("test") / 4000 < 0.24 and 0.07 < splits.count("val") / 4000 < 0.13
