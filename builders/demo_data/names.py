"""Entity names for the demo data: signatures, cytokines, cell types, drugs, cell lines, tissues.

Every list is in priority order: a demo at scale s takes the first n entries, so small scales keep
the best-known entities (IFN-gamma, IL-6, Dexamethasone, Visium brain ...). Lists never depend on
the seed. Sources: DOMAIN.md §1.1, §2.0, §3.0, §4.0, §8.
"""

from __future__ import annotations

import zlib

# --- signatures (§1.1) -------------------------------------------------------------------------

CYTOSIG = (
    "Activin A", "BDNF", "BMP2", "BMP4", "BMP6", "CD40L", "CXCL12", "EGF", "FGF2", "GCSF", "GDF11",
    "GMCSF", "HGF", "IFN1", "IFNG", "IFNL", "IL10", "IL12", "IL13", "IL15", "IL17A", "IL1A", "IL1B",
    "IL2", "IL21", "IL22", "IL27", "IL3", "IL36", "IL4", "IL6", "LIF", "LTA", "MCSF", "NO", "OSM",
    "TGFB1", "TGFB3", "TNFA", "TRAIL", "TWEAK", "VEGFA", "WNT3A",
)
assert len(CYTOSIG) == 43

# Gene encoding each CytoSig target (cross-sample correlations, SecAct pathway members).
CYTOSIG_GENE = {
    "Activin A": "INHBA", "CD40L": "CD40LG", "GCSF": "CSF3", "GMCSF": "CSF2", "IFN1": "IFNA1",
    "IFNL": "IFNL1", "IL12": "IL12A", "IL36": "IL36A", "MCSF": "CSF1", "NO": "NOS2", "TNFA": "TNF",
    "TRAIL": "TNFSF10", "TWEAK": "TNFSF12",
}


def cytosig_gene(name: str) -> str:
    return CYTOSIG_GENE.get(name, name)


_SECACT_HEAD = """
BDNF BMP2 BMP4 BMP6 CXCL12 FGF2 GDF11 HGF IFNG IL10 IL15 IL1A IL1B IL21 IL27 IL6 LIF LTA OSM TGFB1
TGFB3 VEGFA IFNL1 CCL2 CCL5 CXCL10 CSF1 CSF2 CSF3 TNF TGFB2 IL18 IL33 IL23A IL17F MMP1 MMP2 MMP3
MMP7 MMP9 MMP13 MMP14 C3 C4A C5 COL1A1 COL3A1 SPP1 APOE WNT5A SFRP1 DKK1 GDF15 IL2 IL4 IL13 IFNB1
IFNA1 CXCL8 CXCL9 CXCL13 CCL19 CCL21 CD40LG TNFSF10 TNFSF12 IL22 IL17A IL12A IL3 IL7 IL5 INHBA
EGF PDGFB IGF1 KITLG FLT3LG TNFSF11 TNFSF13B TNFSF13 TNFSF14 FASLG IL36A IL1RN IL11 IL9 IL16 IL25
IL19 IL20 IL24 IL26 IL31 IL32 IL34 EBI3 IL37 IL1F10 IL36RN TNFSF4 TNFSF9 TNFSF18 CD70 CCL3 CCL4
CCL20 CX3CL1 TSLP IFNW1 POSTN SPARC THBS1 FN1 TIMP1 SERPINE1 VCAN DCN LUM BGN CTGF CCN1 ANGPT2
PGF SAA1 CRP LCN2 S100A8 S100A9 CHI3L1 GZMB GZMA GNLY PRF1 LTB CCL17 CCL22 CXCL1 CXCL2 CXCL5
"""

# Families of real secreted-protein symbols used to extend SecAct towards 1,249 targets.
_SECACT_FAMILIES = (
    ("CCL", (1, 3, 4, 7, 8, 11, 13, 14, 15, 16, 18, 23, 24, 25, 26, 27, 28)),
    ("CXCL", (3, 6, 11, 14, 16, 17)),
    ("MMP", (8, 10, 11, 12, 15, 16, 17, 19, 20, 21, 23, 24, 25, 26, 27, 28)),
    ("ADAMTS", tuple(range(1, 21))),
    ("WNT", ("1", "2", "2B", "3", "3A", "4", "5B", "6", "7A", "7B", "8A", "8B", "9A", "9B", "10A",
             "10B", "11", "16")),
    ("FGF", tuple(i for i in range(1, 24) if i not in (2, 15))),
    ("BMP", (1, 3, 5, 7, 8, 10, 15)),
    ("GDF", (1, 2, 3, 5, 6, 7, 9, 10)),
    ("SERPINA", tuple(range(1, 13))),
    ("SERPINB", tuple(range(1, 14))),
    ("SERPINE", (2, 3)),
    ("SERPINF", (1, 2)),
    ("IGFBP", tuple(range(1, 8))),
    ("ANGPTL", tuple(range(1, 9))),
    ("SEMA3", ("A", "B", "C", "D", "E", "F", "G")),
    ("EFNA", tuple(range(1, 6))),
    ("NRG", tuple(range(1, 5))),
    ("C1QTNF", tuple(range(1, 10))),
    ("C1QL", tuple(range(1, 5))),
    ("APOA", (1, 2, 4, 5)),
    ("APOC", (1, 2, 3, 4)),
    ("APOL", tuple(range(1, 7))),
    ("LGALS", (1, 2, 3, 4, 7, 8, 9)),
    ("S100A", (1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 16)),
    ("CST", (1, 2, 3, 4, 5, 6, 7, 8, 9)),
    ("KLK", tuple(range(1, 16))),
    ("LCN", (1, 6, 8, 9, 10, 12, 15)),
    ("TIMP", (2, 3, 4)),
    ("THBS", (2, 3, 4)),
    ("FBLN", (1, 2, 5, 7)),
    ("LTBP", (1, 2, 3, 4)),
    ("MFAP", (2, 4, 5)),
    ("SFRP", (2, 4, 5)),
    ("DKK", (2, 3, 4)),
    ("RSPO", (1, 2, 3, 4)),
    ("FSTL", (1, 3, 4, 5)),
    ("PDGF", ("A", "C", "D")),
    ("VEGF", ("B", "C", "D")),
    ("COL1A", (2,)),
    ("COL4A", tuple(range(1, 7))),
    ("COL5A", (1, 2, 3)),
    ("COL6A", (1, 2, 3, 5, 6)),
    ("COL", ("2A1", "7A1", "8A1", "8A2", "9A1", "10A1", "11A1", "11A2", "12A1", "14A1", "15A1",
             "16A1", "18A1", "21A1", "24A1", "27A1", "28A1")),
    ("LAMA", tuple(range(1, 6))),
    ("LAMB", tuple(range(1, 5))),
    ("LAMC", (1, 2, 3)),
    ("MATN", (1, 2, 3, 4)),
    ("HAPLN", (1, 2, 3, 4)),
    ("CCN", (3, 4, 5, 6)),
    ("WFDC", (1, 2, 3, 5, 6, 8, 10, 12, 13)),
    ("DEFB", (1, 103, 104, 105, 106, 107, 108, 110, 112, 113, 114, 116, 118, 119, 121, 123)),
    ("DEFA", (1, 3, 4, 5, 6)),
    ("REG", ("1A", "1B", "3A", "4")),
    ("TFF", (1, 2, 3)),
    ("CTS", ("B", "D", "G", "K", "L", "S", "V", "Z")),
    ("GZM", ("H", "K", "M")),
    ("LOXL", (1, 2, 3, 4)),
    ("ENPP", (2, 6, 7)),
    ("SCGB", ("1A1", "1D2", "2A1", "2A2", "3A1", "3A2")),
    ("PRSS", (1, 2, 3, 8, 22, 23, 27, 33, 35)),
    ("SPINK", (1, 2, 4, 5, 6, 7, 9)),
    ("CHGA", ("",)), ("CHGB", ("",)), ("SCG", (2, 3, 5)),
    ("NPTX", (1, 2)), ("OLFM", (1, 2, 3, 4)), ("PCSK", (1, 2, 5, 6, 9)),
    ("FCN", (1, 2, 3)), ("MBL", (2,)), ("CFH", ("", "R1", "R2", "R3", "R5")),
    ("SAA", (2, 4)), ("ORM", (1, 2)), ("IL17", ("B", "C", "D")), ("IFNA", (2, 4, 5, 6, 7, 8, 10, 13,
                                                                       14, 16, 17, 21)),
    ("IFNL", (2, 3)), ("TNFSF", (8, 15)), ("NTF", (3, 4)), ("PTX", (3, 4)),
    ("EDN", (1, 2, 3)), ("NPP", ("A", "B", "C")), ("NPY", ("",)), ("GAL", ("",)),
    ("INHB", ("B", "C", "E")), ("LEFTY", (1, 2)), ("GREM", (1, 2)), ("NOG", ("",)), ("CHRD", ("",)),
    ("SHH", ("",)), ("IHH", ("",)), ("DHH", ("",)), ("TGFA", ("",)), ("HBEGF", ("",)),
    ("AREG", ("",)), ("EREG", ("",)), ("BTC", ("",)), ("EPGN", ("",)), ("MDK", ("",)), ("PTN", ("",)),
    ("ADIPOQ", ("",)), ("LEP", ("",)), ("RETN", ("",)), ("NAMPT", ("",)), ("GH", (1, 2)),
    ("PRL", ("",)), ("POMC", ("",)), ("INS", ("",)), ("GCG", ("",)), ("EPO", ("",)), ("THPO", ("",)),
    ("AGT", ("",)), ("REN", ("",)), ("KNG", (1,)), ("F", (2, 5, 7, 8, 9, 10, 11, 12)),
    ("PLG", ("",)), ("PLAT", ("",)), ("PLAU", ("",)), ("FG", ("A", "B", "G")), ("VWF", ("",)),
    ("ALB", ("",)), ("AFP", ("",)), ("TF", ("",)), ("HP", ("",)), ("HPX", ("",)), ("APCS", ("",)),
    ("LBP", ("",)), ("CAMP", ("",)), ("PI", (3, 15, 16)), ("SLPI", ("",)), ("LYZ", ("",)),
    ("CHIT", (1,)), ("ADM", ("", 2)), ("CALCA", ("",)), ("VIP", ("",)), ("AGRP", ("",)),
    ("C1Q", ("A", "B", "C")), ("C", (2, 4, 6, 7, 9)), ("C4B", ("",)), ("C8", ("A", "B", "G")),
    ("CF", ("B", "D", "I", "P")), ("APO", ("B", "D", "F", "H", "M")), ("GPX", (3,)), ("SOD", (3,)),
    ("QSOX", (1,)), ("PCOLCE", ("", 2)), ("LOX", ("",)), ("ELN", ("",)), ("FBN", (1, 2, 3)),
    ("EFEMP", (1, 2)), ("FMOD", ("",)), ("OGN", ("",)), ("ASPN", ("",)), ("PRELP", ("",)),
    ("KERA", ("",)), ("EPYC", ("",)), ("CHAD", ("",)), ("ACAN", ("",)), ("BCAN", ("",)),
    ("NCAN", ("",)), ("PRG", (2, 3, 4)), ("COMP", ("",)), ("CTHRC", (1,)), ("TNC", ("",)),
    ("TNN", ("",)), ("TNR", ("",)), ("TNXB", ("",)), ("VTN", ("",)), ("NID", (1, 2)),
    ("SPARCL", (1,)), ("SMOC", (1, 2)), ("SPON", (1, 2)), ("WIF", (1,)), ("FST", ("",)),
    ("ANGPT", (1, 4)), ("ANGPTL", ("",)), ("EFNB", (1, 2, 3)), ("NGF", ("",)), ("GDNF", ("",)),
    ("ARTN", ("",)), ("NRTN", ("",)), ("PSPN", ("",)), ("MST", (1,)), ("IGF", (2,)),
    ("IGFBPL", (1,)), ("AMH", ("",)), ("NODAL", ("",)), ("ANXA", (1, 2, 5)), ("HMGB", (1, 2)),
    ("MIF", ("",)), ("GPI", ("",)), ("VGF", ("",)), ("CARTPT", ("",)), ("NMB", ("",)), ("GRP", ("",)),
    ("NUCB", (1, 2)), ("CRH", ("",)), ("TRH", ("",)), ("SST", ("",)), ("PYY", ("",)), ("CCK", ("",)),
    ("GAST", ("",)), ("SCT", ("",)), ("MLN", ("",)), ("GHRL", ("",)), ("OXT", ("",)), ("AVP", ("",)),
    ("UCN", ("", 2, 3)), ("NTS", ("",)), ("TAC", (1, 3)), ("PENK", ("",)), ("PDYN", ("",)),
    ("PNOC", ("",)), ("METRNL", ("",)), ("FNDC", (5,)), ("GPNMB", ("",)),
    ("SEMA4", ("A", "D")), ("SEMA7", ("A",)), ("PLXDC", (1,)), ("SLIT", (1, 2, 3)),
    ("NTN", (1, 3, 4)), ("RELN", ("",)), ("CBLN", (1, 2, 4)), ("NELL", (1, 2)), ("SOST", ("",)),
    ("SOSTDC", (1,)), ("CER", (1,)), ("TWSG", (1,)), ("BMPER", ("",)), ("HHIP", ("",)),
    ("CRLF", (1,)), ("CLCF", (1,)), ("CNTF", ("",)), ("CTF", (1,)), ("IL12B", ("",)),
    ("IL18BP", ("",)), ("IL22RA", (2,)), 
    ("TNFRSF", ("11B", "6B")), ("SCGB1C", (1,)), ("MUC", ("5AC", "5B", "7")),
    ("SFTP", ("A1", "A2", "B", "C", "D")), ("PIGR", ("",)), ("FCGBP", ("",)), ("ZG16", ("",)),
    ("CLPS", ("",)), ("PNLIP", ("",)), ("CELA", ("2A", "3A", "3B")), ("CPA", (1, 2, 3, 4)),
    ("CPB", (1, 2)), ("CTRB", (1, 2)), ("CTRC", ("",)), ("AMY", ("1A", "2A", "2B")),
    ("LIPF", ("",)), ("PGA", (3, 4, 5)), ("PGC", ("",)), ("GKN", (1, 2)), ("MSMB", ("",)),
    ("ACPP", ("",)), ("SEMG", (1, 2)), ("PATE", (1, 2, 4)), ("SPINT", (1, 2, 3)),
    ("AZGP", (1,)), ("PIP", ("",)), ("MUCL", (1,)), ("STATH", ("",)), ("HTN", (1, 3)),
    ("PRB", (1, 2, 3, 4)), ("PRH", (1, 2)), ("SMR", (3,)), ("BPIF", ("A1", "A2", "B1")),
    ("FAM3", ("A", "B", "C", "D")), ("FAM20", ("A", "C")), ("ISM", (1, 2)), ("SCUBE", (1, 2, 3)),
    ("EGFL", (6, 7, 8)), ("PAPPA", ("", 2)), ("STC", (1, 2)), ("EMILIN", (1, 2, 3)), ("MGP", ("",)),
    ("COLEC", (10, 11, 12)), ("CRISP", (1, 2, 3)), ("CRISPLD", (1, 2)), ("HTRA", (1, 3, 4)),
    ("SERPIN", ("C1", "D1", "G1", "H1", "I1", "I2")), ("ITIH", (1, 2, 3, 4, 5)), ("AMBP", ("",)),
    ("A2M", ("",)), ("PZP", ("",)), ("CPN", (1, 2)), ("ECM", (1, 2)), ("PLA2G", ("2A", "5", "7",
                                                                            "10", "12A", "12B")),
    ("LPL", ("",)), ("LCAT", ("",)), ("PLTP", ("",)), ("CETP", ("",)), ("FETUB", ("",)),
    ("AHSG", ("",)), ("HRG", ("",)), ("CLU", ("",)), ("GSN", ("",)), ("PON", (1, 2, 3)),
    ("RBP", (4,)), ("TTR", ("",)), ("SHBG", ("",)), ("IGFALS", ("",)), ("NPNT", ("",)),
    ("ABI3BP", ("",)), ("SVEP", (1,)), ("CCDC80", ("",)), ("PI16", ("",)), ("GLIPR", (1,)),
    ("SMPDL3", ("A",)), ("CD5L", ("",)), ("MSLN", ("",)), ("OMD", ("",)), ("DPT", ("",)),
    ("CILP", ("", 2)), ("THSD", (4,)), ("ADAMTSL", (1, 2, 3, 4, 5)), ("SPOCK", (1, 2, 3)),
    ("TINAGL", (1,)), ("SLURP", (1,)), ("LYPD", (1, 2, 3)), ("UCMA", ("",)), ("MEPE", ("",)),
    ("DMP", (1,)), ("IBSP", ("",)), ("SPP2", ("",)), ("AZU", (1,)), ("ELANE", ("",)),
    ("MPO", ("",)), ("PRTN", (3,)), ("CTSG", ()), ("LTF", ("",)), ("BPI", ("",)), ("CHI3L2", ("",)),
    ("CHIA", ("",)), ("OVGP", (1,)), ("TCN", (1, 2)), ("GC", ("",)), ("SELENOP", ("",)),
    ("FGL", (1, 2)), ("HPR", ("",)), ("MASP", (1, 2)), ("CRTAC", (1,)), ("SNED", (1,)),
)

# Clone-based ("C1orf54") names fill the remainder once the families run out.
_ORF_FILL = tuple(f"C{c}orf{n}" for n in range(20, 220) for c in (1, 2, 3, 6, 11, 12, 14, 15, 17,
                                                                    19))


def _secact_all() -> tuple[str, ...]:
    names: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name and name not in seen:
            seen.add(name)
            names.append(name)

    for name in _SECACT_HEAD.split():
        add(name)
    for prefix, suffixes in _SECACT_FAMILIES:
        for suffix in suffixes:
            add(f"{prefix}{suffix}")
    for name in _ORF_FILL:
        if len(names) >= 1249:
            break
        add(name)
    return tuple(names[:1249])


SECACT = _secact_all()
assert len(SECACT) == 1249 and len(set(SECACT)) == 1249

# LinCytoSig (§1.1): 178 cell-type-specific cytokine signatures named CellType__Cytokine.
_LIN_CELLTYPES = ("Monocyte", "Macrophage", "CD4_T", "CD8_T", "NK", "B_Cell", "DC", "Neutrophil",
                  "Fibroblast", "Endothelial", "Epithelial", "Treg", "pDC", "Mast")
_LIN_CYTOKINES = ("TNF", "IFNG", "IL6", "IL1B", "IL10", "IFN1", "TGFB1", "IL4", "IL2", "IL13",
                  "IL17A", "OSM", "IL15", "GMCSF", "IL21", "IL22", "IL27", "LIF", "IL3")
LINCYTOSIG = tuple(f"{ct}__{cy}" for cy in _LIN_CYTOKINES for ct in _LIN_CELLTYPES)[:178]
assert len(LINCYTOSIG) == 178

# --- parse_10M (§2.0, §8.1) ----------------------------------------------------------------------

DONORS = tuple(f"D{i}" for i in range(1, 13))
PBS = "PBS"

# (cell type, share of cells in a sample, lineage group used by the response rules)
PARSE_CELL_TYPES = (
    ("CD4+ T naive", 0.14, "T4"), ("CD4+ T memory", 0.12, "T4"), ("CD4+ T effector", 0.04, "T4"),
    ("Th1", 0.03, "T4"), ("Th17", 0.015, "T4"), ("Treg", 0.03, "Treg"),
    ("CD8+ T naive", 0.07, "T8"), ("CD8+ T memory", 0.06, "T8"), ("CD8+ T effector", 0.05, "T8"),
    ("gamma-delta T", 0.02, "T8"), ("Naive B", 0.06, "B"), ("Memory B", 0.04, "B"),
    ("Plasmablast", 0.003, "B"), ("CD56bright NK", 0.01, "NK"), ("CD56dim NK", 0.09, "NK"),
    ("Classical monocyte", 0.18, "Mono"), ("Non-classical monocyte", 0.03, "Mono"),
    ("Dendritic cell", 0.008, "DC"),
)

# name | family | subfamily | CytoSig signature ('-' = unmapped) | gene (SecAct symbol)
_MAPPED = """
IFN-gamma|Interferon|Type II|IFNG|IFNG
IL-6|Interleukin|IL-6 family|IL6|IL6
TNF-alpha|TNF superfamily|TNF|TNFA|TNF
IL-2|Interleukin|Common gamma chain|IL2|IL2
IL-4|Interleukin|Common gamma chain|IL4|IL4
IFN-beta|Interferon|Type I|IFN1|IFNB1
IL-10|Interleukin|IL-10 family|IL10|IL10
IL-1-beta|Interleukin|IL-1 family|IL1B|IL1B
TGF-beta1|TGF-beta superfamily|TGF-beta|TGFB1|TGFB1
IL-15|Interleukin|Common gamma chain|IL15|IL15
GM-CSF|Colony-stimulating factor|GM-CSF|GMCSF|CSF2
IL-17A|Interleukin|IL-17 family|IL17A|IL17A
IL-13|Interleukin|IL-4/IL-13|IL13|IL13
IL-21|Interleukin|Common gamma chain|IL21|IL21
IFN-alpha1|Interferon|Type I|IFN1|IFNA1
IL-12|Interleukin|IL-12 family|IL12|IL12A
IL-22|Interleukin|IL-10 family|IL22|IL22
OSM|Interleukin|IL-6 family|OSM|OSM
LIF|Interleukin|IL-6 family|LIF|LIF
IL-27|Interleukin|IL-12 family|IL27|IL27
IL-1-alpha|Interleukin|IL-1 family|IL1A|IL1A
IFN-lambda1|Interferon|Type III|IFNL|IFNL1
G-CSF|Colony-stimulating factor|G-CSF|GCSF|CSF3
M-CSF|Colony-stimulating factor|M-CSF|MCSF|CSF1
IL-3|Interleukin|Beta common chain|IL3|IL3
CD40L|TNF superfamily|CD40L|CD40L|CD40LG
TRAIL|TNF superfamily|TRAIL|TRAIL|TNFSF10
TWEAK|TNF superfamily|TWEAK|TWEAK|TNFSF12
LT-alpha|TNF superfamily|Lymphotoxin|LTA|LTA
HGF|Growth factor|HGF|HGF|HGF
EGF|Growth factor|EGF family|EGF|EGF
VEGF|Growth factor|VEGF family|VEGFA|VEGFA
FGF-beta|Growth factor|FGF family|FGF2|FGF2
BMP-2|TGF-beta superfamily|BMP|BMP2|BMP2
BMP-4|TGF-beta superfamily|BMP|BMP4|BMP4
BMP-6|TGF-beta superfamily|BMP|BMP6|BMP6
GDF-11|TGF-beta superfamily|GDF|GDF11|GDF11
Activin A|TGF-beta superfamily|Activin|Activin A|INHBA
TGF-beta3|TGF-beta superfamily|TGF-beta|TGFB3|TGFB3
CXCL12|Chemokine|CXC|CXCL12|CXCL12
BDNF|Growth factor|Neurotrophin|BDNF|BDNF
IL-36-alpha|Interleukin|IL-1 family|IL36|IL36A
IFN-omega|Interferon|Type I|IFN1|IFNW1
"""

_UNMAPPED = """
CCL2|Chemokine|CC|-|CCL2
IL-18|Interleukin|IL-1 family|-|IL18
CXCL10|Chemokine|CXC|-|CXCL10
IL-33|Interleukin|IL-1 family|-|IL33
IL-7|Interleukin|Common gamma chain|-|IL7
IL-23|Interleukin|IL-12 family|-|IL23A
BAFF|TNF superfamily|BAFF|-|TNFSF13B
IL-8|Chemokine|CXC|-|CXCL8
IL-5|Interleukin|Beta common chain|-|IL5
IL-17F|Interleukin|IL-17 family|-|IL17F
CCL5|Chemokine|CC|-|CCL5
IL-9|Interleukin|Common gamma chain|-|IL9
IL-11|Interleukin|IL-6 family|-|IL11
RANKL|TNF superfamily|RANKL|-|TNFSF11
IL-1Ra|Interleukin|IL-1 family|-|IL1RN
CCL3|Chemokine|CC|-|CCL3
IL-16|Interleukin|Other|-|IL16
APRIL|TNF superfamily|APRIL|-|TNFSF13
IL-19|Interleukin|IL-10 family|-|IL19
CCL4|Chemokine|CC|-|CCL4
IL-20|Interleukin|IL-10 family|-|IL20
LIGHT|TNF superfamily|LIGHT|-|TNFSF14
IL-24|Interleukin|IL-10 family|-|IL24
CCL19|Chemokine|CC|-|CCL19
IL-26|Interleukin|IL-10 family|-|IL26
FasL|TNF superfamily|FasL|-|FASLG
IL-31|Interleukin|IL-6 family|-|IL31
CCL20|Chemokine|CC|-|CCL20
IL-32-beta|Interleukin|Other|-|IL32
OX40L|TNF superfamily|OX40L|-|TNFSF4
IL-34|Interleukin|Other|-|IL34
CX3CL1|Chemokine|CX3C|-|CX3CL1
IL-35|Interleukin|IL-12 family|-|EBI3
4-1BBL|TNF superfamily|4-1BBL|-|TNFSF9
IL-37|Interleukin|IL-1 family|-|IL37
IGF-1|Growth factor|IGF|-|IGF1
IL-38|Interleukin|IL-1 family|-|IL1F10
GITRL|TNF superfamily|GITRL|-|TNFSF18
IL-36Ra|Interleukin|IL-1 family|-|IL36RN
FLT3L|Growth factor|FLT3L|-|FLT3LG
IL-17B|Interleukin|IL-17 family|-|IL17B
CD27L|TNF superfamily|CD27L|-|CD70
IL-17C|Interleukin|IL-17 family|-|IL17C
SCF|Growth factor|SCF|-|KITLG
IL-17E|Interleukin|IL-17 family|-|IL25
PDGF-BB|Growth factor|PDGF|-|PDGFB
TSLP|Interleukin|IL-7 family|-|TSLP
"""


def _rows(block: str) -> list[tuple[str, ...]]:
    return [tuple(line.split("|")) for line in block.strip().splitlines()]


def _interleave(a: list, b: list) -> list:
    """Merge two priority lists evenly, so every prefix holds both kinds in proportion."""
    keyed = [(i / len(a), 0, x) for i, x in enumerate(a)]
    keyed += [((i + 0.5) / len(b), 1, x) for i, x in enumerate(b)]
    return [x for *_, x in sorted(keyed, key=lambda k: (k[0], k[1]))]


# (name, family, subfamily, CytoSig signature or None, gene symbol)
CYTOKINES = tuple((n, f, s, None if c == "-" else c, g)
                  for n, f, s, c, g in _interleave(_rows(_MAPPED), _rows(_UNMAPPED)))
assert len(CYTOKINES) == 90 and len({c[0] for c in CYTOKINES}) == 90
assert all(c[3] is None or c[3] in CYTOSIG for c in CYTOKINES)

_VENDORS = ("PeproTech", "R&D Systems", "BioLegend", "Miltenyi Biotec")


def stable_int(*parts: object) -> int:
    """A seed-independent pseudo-random integer for fixed metadata (vendor, catalog number, ...)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


def cytokine_vendor(name: str) -> tuple[str, str, float]:
    """(vendor, catalog number, concentration ng/mL) for a parse_10M cytokine."""
    h = stable_int("cytokine", name)
    vendor = _VENDORS[h % len(_VENDORS)]
    num = h // 7
    catalog = {
        "PeproTech": f"{200 + num % 100}-{num % 90 + 1:02d}",
        "R&D Systems": f"{num % 9000 + 200}-{name.upper().replace('-', '')[:2]}-{(num % 5 + 1) * 10:03d}",
        "BioLegend": f"{570000 + num % 30000}",
        "Miltenyi Biotec": f"130-{num % 900 + 100}-{num % 900 + 100:03d}",
    }[vendor]
    concentration = (10.0, 20.0, 50.0, 100.0)[(h >> 3) % 4]
    return vendor, catalog, concentration


# Cross-talk between CytoSig signatures (§8.1): a response on the first also moves the second.
CROSSTALK = (("IFNG", "IFN1", 0.4), ("IFN1", "IFNG", 0.4), ("IL6", "OSM", 0.5), ("IL6", "LIF", 0.5),
             ("OSM", "IL6", 0.5), ("LIF", "IL6", 0.5), ("IL1B", "TNFA", 0.4), ("TNFA", "IL1B", 0.4),
             ("IL4", "IL13", 0.6), ("IL13", "IL4", 0.6))

# Responsiveness by lineage group (§8.1, receptor biology); '*' = every other group.
RESPONSE_RULES = {
    "IFNG": {"Mono": 1.0, "DC": 1.0, "B": 0.6, "*": 0.45},
    "IFN1": {"*": 0.9},
    "IFNL": {"DC": 0.7, "B": 0.4, "*": 0.15},
    "IL2": {"NK": 1.0, "T8": 0.8, "Treg": 1.0, "T4": 0.4, "*": 0.1},
    "IL15": {"NK": 1.0, "T8": 0.9, "Treg": 0.6, "T4": 0.3, "*": 0.1},
    "IL21": {"B": 0.9, "T4": 0.6, "T8": 0.6, "NK": 0.5, "*": 0.1},
    "IL4": {"B": 1.0, "Mono": 0.8, "DC": 0.7, "T4": 0.4, "*": 0.1},
    "IL13": {"B": 0.6, "Mono": 0.9, "DC": 0.6, "*": 0.05},
    "IL6": {"Mono": 0.9, "T4": 0.7, "Treg": 0.5, "*": 0.2},
    "OSM": {"Mono": 0.7, "*": 0.15},
    "LIF": {"Mono": 0.5, "*": 0.1},
    "IL10": {"Mono": 1.0, "DC": 0.8, "B": 0.3, "*": 0.1},
    "IL17A": {"*": 0.1},
    "IL22": {"*": 0.08},
    "TGFB1": {"T4": 0.8, "Treg": 0.9, "T8": 0.7, "NK": 0.5, "*": 0.2},
    "TGFB3": {"T4": 0.5, "Treg": 0.6, "T8": 0.4, "*": 0.15},
    "TNFA": {"Mono": 0.9, "DC": 0.8, "*": 0.35},
    "IL1B": {"Mono": 1.0, "DC": 0.8, "*": 0.2},
    "IL1A": {"Mono": 0.9, "DC": 0.7, "*": 0.2},
    "GMCSF": {"Mono": 1.0, "DC": 1.0, "*": 0.05},
    "MCSF": {"Mono": 1.0, "DC": 0.4, "*": 0.05},
    "GCSF": {"Mono": 0.4, "*": 0.05},
    "IL3": {"DC": 0.9, "Mono": 0.6, "*": 0.05},
    "IL12": {"NK": 0.9, "T4": 0.6, "T8": 0.7, "*": 0.1},
    "IL27": {"Mono": 0.6, "T4": 0.6, "T8": 0.5, "*": 0.3},
    "CD40L": {"B": 1.0, "Mono": 0.6, "DC": 0.8, "*": 0.05},
}
DEFAULT_RESPONSE = {"Mono": 0.35, "DC": 0.3, "*": 0.12}

# --- Tahoe-100M (§2.0, §8.1) ---------------------------------------------------------------------

DMSO = "DMSO_TF"
PLATES = tuple(range(1, 15))
SCREEN_PLATES = tuple(range(1, 13))
DOSE_PLATE, REPLICATE_PLATE = 13, 14
DOSES = (0.1, 1.0, 10.0)

# Drug classes (22:64-113) and the CytoSig signatures each class moves (sign, magnitude range).
DRUG_CLASS_EFFECTS = {
    "glucocorticoid": {"IL2": -1, "IL6": -1, "TNFA": -1, "IL1B": -1, "IFNG": -1},
    "jak_inhibitor": {"IFNG": -1, "IFN1": -1, "IL6": -1, "IL2": -1, "IL10": -1},
    "proteasome_inhibitor": {"TNFA": 1, "IL1B": -1, "IL6": 1},
    "hdac_inhibitor": {"IFNG": -1, "TNFA": 1, "IL6": -1},
    "mtor_inhibitor": {"IL2": -1, "IL6": -1, "VEGFA": -1, "TGFB1": -1},
    "nfkb_inhibitor": {"TNFA": -1, "IL1B": -1, "IL6": -1},
    "dna_damage": {"TNFA": 1, "IL6": 1, "IFN1": 1, "TGFB1": 1},
    "kinase_inhibitor": {"EGF": -1, "VEGFA": -1, "FGF2": -1, "TGFB1": -1, "HGF": -1},
}

# In priority order; Imatinib is fifth so the smallest demo (five drugs) holds it (`cytoatlas search Imatinib`).
_DRUGS = """
Dexamethasone:glucocorticoid
Trametinib:kinase_inhibitor
Bortezomib:proteasome_inhibitor
Ruxolitinib:jak_inhibitor;kinase_inhibitor
Imatinib:kinase_inhibitor
Cisplatin:dna_damage
Rapamycin:mtor_inhibitor
Lenalidomide:
Vorinostat:hdac_inhibitor
BAY-11-7082:nfkb_inhibitor
Tofacitinib:jak_inhibitor;kinase_inhibitor
Doxorubicin:dna_damage
Dasatinib:kinase_inhibitor
Panobinostat:hdac_inhibitor
Everolimus:mtor_inhibitor
Prednisolone:glucocorticoid
Carfilzomib:proteasome_inhibitor
Sorafenib:kinase_inhibitor
Etoposide:dna_damage
Baricitinib:jak_inhibitor;kinase_inhibitor
Erlotinib:kinase_inhibitor
Olaparib:
Gefitinib:kinase_inhibitor
Paclitaxel:
Temsirolimus:mtor_inhibitor
Romidepsin:hdac_inhibitor
Hydrocortisone:glucocorticoid
Ixazomib:proteasome_inhibitor
Gemcitabine:dna_damage
Sunitinib:kinase_inhibitor
TPCA-1:nfkb_inhibitor
Fedratinib:jak_inhibitor;kinase_inhibitor
Nilotinib:kinase_inhibitor
Venetoclax:
Topotecan:dna_damage
Belinostat:hdac_inhibitor
Budesonide:glucocorticoid
Selumetinib:kinase_inhibitor
Pomalidomide:
Oxaliplatin:dna_damage
Sapanisertib:mtor_inhibitor
Osimertinib:kinase_inhibitor
Parthenolide:nfkb_inhibitor
Entinostat:hdac_inhibitor
Methylprednisolone:glucocorticoid
Momelotinib:jak_inhibitor;kinase_inhibitor
Carboplatin:dna_damage
Bosutinib:kinase_inhibitor
Tamoxifen:
Irinotecan:dna_damage
Lapatinib:kinase_inhibitor
Oprozomib:proteasome_inhibitor
Ponatinib:kinase_inhibitor
Thalidomide:
Camptothecin:dna_damage
Pazopanib:kinase_inhibitor
Givinostat:hdac_inhibitor
Ridaforolimus:mtor_inhibitor
Cobimetinib:kinase_inhibitor
Metformin:
Betamethasone:glucocorticoid
Mitomycin C:dna_damage
Regorafenib:kinase_inhibitor
Upadacitinib:jak_inhibitor;kinase_inhibitor
QNZ:nfkb_inhibitor
Vemurafenib:kinase_inhibitor
Fulvestrant:
Bleomycin:dna_damage
Dabrafenib:kinase_inhibitor
Azacitidine:
Lenvatinib:kinase_inhibitor
Fluorouracil:dna_damage
Cabozantinib:kinase_inhibitor
Decitabine:
Axitinib:kinase_inhibitor
Enzalutamide:
Afatinib:kinase_inhibitor
Docetaxel:
Neratinib:kinase_inhibitor
Vincristine:
Crizotinib:kinase_inhibitor
Methotrexate:
Alectinib:kinase_inhibitor
Niraparib:
Ibrutinib:kinase_inhibitor
Navitoclax:
Palbociclib:kinase_inhibitor
Talazoparib:
Ribociclib:kinase_inhibitor
Hydroxyurea:
Abemaciclib:kinase_inhibitor
Abiraterone:
Alpelisib:kinase_inhibitor
Idelalisib:kinase_inhibitor
Binimetinib:kinase_inhibitor
"""
# (drug, classes)
DRUGS = tuple((name, tuple(c for c in classes.split(";") if c))
              for name, classes in (line.split(":") for line in _DRUGS.strip().splitlines()))
assert len(DRUGS) == 95 and len({d for d, _ in DRUGS}) == 95

# (cell line, cancer type, tissue) in priority order: the first ten span ten cancer types.
_CELL_LINES = """
A549|Lung adenocarcinoma|Lung
MCF7|Breast carcinoma|Breast
HCT116|Colorectal carcinoma|Colon
SKOV3|Ovarian carcinoma|Ovary
A375|Melanoma|Skin
PANC-1|Pancreatic carcinoma|Pancreas
K562|Chronic myeloid leukemia|Blood
PC-3|Prostate carcinoma|Prostate
HepG2|Hepatocellular carcinoma|Liver
U-87 MG|Glioblastoma|Brain
NCI-H1299|Lung carcinoma|Lung
MDA-MB-231|Breast carcinoma|Breast
HT29|Colorectal carcinoma|Colon
A2780|Ovarian carcinoma|Ovary
SK-MEL-28|Melanoma|Skin
MiaPaCa-2|Pancreatic carcinoma|Pancreas
HL-60|Acute myeloid leukemia|Blood
DU145|Prostate carcinoma|Prostate
Huh-7|Hepatocellular carcinoma|Liver
U-251 MG|Glioblastoma|Brain
NCI-H460|Lung carcinoma|Lung
T47D|Breast carcinoma|Breast
SW480|Colorectal carcinoma|Colon
OVCAR3|Ovarian carcinoma|Ovary
SK-MEL-5|Melanoma|Skin
BxPC-3|Pancreatic carcinoma|Pancreas
Jurkat|T-cell leukemia|Blood
LNCaP|Prostate carcinoma|Prostate
Hep3B|Hepatocellular carcinoma|Liver
T98G|Glioblastoma|Brain
NCI-H23|Lung adenocarcinoma|Lung
BT-474|Breast carcinoma|Breast
SW620|Colorectal carcinoma|Colon
OVCAR-8|Ovarian carcinoma|Ovary
MeWo|Melanoma|Skin
AsPC-1|Pancreatic carcinoma|Pancreas
MOLM-13|Acute myeloid leukemia|Blood
22Rv1|Prostate carcinoma|Prostate
NCI-H1975|Lung adenocarcinoma|Lung
SK-BR-3|Breast carcinoma|Breast
LoVo|Colorectal carcinoma|Colon
Caov-3|Ovarian carcinoma|Ovary
Capan-2|Pancreatic carcinoma|Pancreas
THP-1|Acute myeloid leukemia|Blood
Calu-3|Lung adenocarcinoma|Lung
MDA-MB-468|Breast carcinoma|Breast
DLD-1|Colorectal carcinoma|Colon
HCC827|Lung adenocarcinoma|Lung
KG-1|Acute myeloid leukemia|Blood
Caco-2|Colorectal carcinoma|Colon
"""
CELL_LINES = tuple(tuple(line.split("|")) for line in _CELL_LINES.strip().splitlines())
assert len(CELL_LINES) == 50 and len({c[0] for c in CELL_LINES}) == 50

# Pathways for tahoe_pathway_activation: member CytoSig signatures (SecAct uses their genes plus
# a few extra secreted readouts).
PATHWAYS = {
    "JAK-STAT": ("IL2", "IL4", "IL6", "IL10", "IL15", "IL21", "IL27", "IFNG", "IFN1", "OSM", "LIF",
                 "GMCSF"),
    "NF-kB": ("TNFA", "IL1A", "IL1B", "CD40L", "LTA", "TRAIL", "TWEAK", "IL36"),
    "MAPK/ERK": ("EGF", "FGF2", "HGF", "BDNF", "VEGFA", "IL1B"),
    "PI3K-AKT-mTOR": ("IL2", "IL15", "VEGFA", "HGF", "EGF", "MCSF"),
    "TGF-beta": ("TGFB1", "TGFB3", "BMP2", "BMP4", "BMP6", "GDF11", "Activin A"),
    "Type I IFN": ("IFN1", "IFNL"),
    "Type II IFN": ("IFNG", "IL12", "IL27"),
    "RTK-RAS": ("EGF", "FGF2", "HGF", "VEGFA", "MCSF"),
    "ABL": ("CXCL12", "MCSF", "GCSF", "GMCSF"),
}
PATHWAY_SECACT_EXTRA = {
    "JAK-STAT": ("CSF3", "IL7", "TSLP"), "NF-kB": ("CXCL8", "CCL2", "CCL20", "TNFSF13B"),
    "MAPK/ERK": ("PDGFB", "AREG", "EREG"), "PI3K-AKT-mTOR": ("IGF1", "PDGFB", "KITLG"),
    "TGF-beta": ("TGFB2", "GDF15", "INHBA"), "Type I IFN": ("IFNB1", "IFNW1", "CXCL10"),
    "Type II IFN": ("CXCL9", "CXCL10", "CXCL11"), "RTK-RAS": ("PDGFB", "TGFA", "HBEGF"),
    "ABL": ("KITLG", "FLT3LG", "CCL3"),
}

# --- SpatialCorpus (§3.0, §8.2) ------------------------------------------------------------------

# technology -> (files, species, tier, n_cells mean, n_genes range, gene-coverage target share)
TECHNOLOGIES = {
    "Visium": (171, "human", "A", 350_000, (15_000, 20_000)),
    "Xenium": (23, "human", "B", 1_090_000, (300, 500)),
    "MERFISH": (15, "human", "B", 667_000, (150, 400)),
    "MERSCOPE": (8, "human", "B", 625_000, (300, 500)),
    "CosMx": (5, "human", "B", 600_000, (900, 1_000)),
    "ISS": (3, "human", "C", 333_000, (100, 200)),
    "SlideSeq": (7, "mouse", "C", 60_000, (18_000, 22_000)),
    "10x": (2, "mouse", "C", 8_000, (25_000, 32_000)),
}
# technology -> (matrix gene coverage range, share of targets with >= 50% of their genes)
TECH_COVERAGE = {
    "Visium": ((0.82, 0.92), 1.0), "Xenium": ((0.10, 0.20), 0.20), "MERFISH": ((0.05, 0.15), 0.12),
    "MERSCOPE": ((0.08, 0.16), 0.15), "CosMx": ((0.20, 0.30), 0.30), "ISS": ((0.01, 0.04), 0.02),
    "SlideSeq": ((0.70, 0.85), 0.9), "10x": ((0.85, 0.95), 1.0),
}
TECH_SOURCES = {
    "Visium": ("GEO", "10x Genomics", "HTAPP", "CELLxGENE"), "Xenium": ("10x Genomics", "GEO"),
    "MERFISH": ("Vizgen", "GEO"), "MERSCOPE": ("Vizgen",), "CosMx": ("NanoString",),
    "ISS": ("Zenodo",), "SlideSeq": ("Broad SCP",), "10x": ("10x Genomics",),
}

# tissue -> share of the 251 files (§3.0: brain 35, breast 28, ..., tumours 40+, other 49)
SPATIAL_TISSUES = {
    "brain": 35, "breast": 28, "lung": 22, "liver": 18, "kidney": 15, "colon": 14, "heart": 12,
    "skin": 10, "lymph node": 8, "breast tumor": 8, "lung tumor": 6, "colorectal tumor": 6,
    "glioblastoma": 5, "melanoma": 5, "ovarian tumor": 4, "prostate tumor": 3, "liver tumor": 3,
    "pancreas": 7, "prostate": 6, "tonsil": 6, "spleen": 5, "stomach": 5, "small intestine": 5,
    "ovary": 4, "uterus": 4, "placenta": 3, "thymus": 2, "bone marrow": 2,
}
assert sum(SPATIAL_TISSUES.values()) == 251
# The first file of each panel technology goes to a tissue Visium also covers (comparisons).
TECH_FIRST_TISSUE = {"Xenium": "breast", "MERFISH": "brain", "MERSCOPE": "liver", "CosMx": "lung",
                     "ISS": "brain", "SlideSeq": "brain", "10x": "brain"}
TECH_TISSUES = {
    "Xenium": ("breast", "lung", "colon", "skin", "breast tumor", "lung tumor", "lymph node",
               "pancreas", "tonsil", "kidney"),
    "MERFISH": ("brain", "liver", "colon", "glioblastoma", "ovarian tumor", "kidney"),
    "MERSCOPE": ("liver", "breast tumor", "colorectal tumor", "lung", "melanoma"),
    "CosMx": ("lung", "lung tumor", "liver", "liver tumor", "kidney"),
    "ISS": ("brain", "breast"), "SlideSeq": ("brain", "kidney", "liver"), "10x": ("brain",),
}

_IMMUNE = ("T cell", "B cell", "Macrophage", "NK cell", "Plasma cell", "Dendritic cell",
           "Mast cell", "Monocyte")
_STROMA = ("Fibroblast", "Endothelial cell", "Smooth muscle cell", "Pericyte")
_TISSUE_CELL_TYPES = {
    "brain": ("Excitatory neuron", "Inhibitory neuron", "Astrocyte", "Oligodendrocyte", "OPC",
              "Microglia"),
    "liver": ("Hepatocyte", "Kupffer cell", "LSEC", "Cholangiocyte", "Hepatic stellate cell"),
    "lung": ("AT1 cell", "AT2 cell", "Ciliated cell", "Club cell", "Alveolar macrophage"),
    "breast": ("Luminal epithelial", "Basal epithelial", "Myoepithelial cell", "Adipocyte"),
    "colon": ("Enterocyte", "Goblet cell", "Stem cell", "Enteroendocrine cell"),
    "kidney": ("Proximal tubule", "Distal tubule", "Podocyte", "Loop of Henle", "Collecting duct"),
    "heart": ("Cardiomyocyte", "Cardiac fibroblast", "Adipocyte"),
    "skin": ("Keratinocyte", "Melanocyte", "Sebocyte"),
    "lymph node": ("Follicular B cell", "Germinal center B cell", "Tfh cell", "FDC", "HEV"),
    "tumor": ("Malignant cell", "CAF", "TAM", "Exhausted T cell", "Treg"),
}
_TISSUE_NICHES = {
    "liver": ("periportal", "pericentral", "portal"),
    "brain": ("L1", "L2/3", "L4", "L5", "L6", "white matter"),
    "tumor": ("tumor core", "tumor margin", "stroma"),
    "lymph node": ("follicle", "T-cell zone", "medulla"),
    "colon": ("crypt", "lamina propria", "muscularis"),
    "kidney": ("cortex", "medulla"),
}


def tissue_kind(tissue: str) -> str:
    if tissue in ("glioblastoma", "melanoma") or tissue.endswith("tumor"):
        return "tumor"
    if tissue in ("small intestine", "stomach"):
        return "colon"
    if tissue in ("tonsil", "spleen", "thymus", "bone marrow"):
        return "lymph node"
    return tissue


def tissue_cell_types(tissue: str) -> tuple[str, ...]:
    return _TISSUE_CELL_TYPES.get(tissue_kind(tissue), ("Epithelial cell",)) + _IMMUNE + _STROMA


def tissue_niches(tissue: str) -> tuple[str, ...]:
    return _TISSUE_NICHES.get(tissue_kind(tissue), ())


# Tissue programmes (§8.2): signatures high in a kind of tissue.
TISSUE_PROGRAMMES = {
    "lymph node": ("IFNG", "IL21", "CXCL12", "CXCL13", "CCL19", "CCL21", "LTB"),
    "liver": ("IL6", "OSM", "SAA1", "CRP", "APOA1", "ALB", "HP"),
    "brain": ("BDNF", "TGFB1", "APOE", "SPARCL1", "NTF3"),
    "tumor": ("TGFB1", "VEGFA", "SPP1", "MMP9", "COL1A1", "POSTN", "IL10"),
    "colon": ("IL22", "IL17A", "REG4", "TFF3", "LCN2"),
    "lung": ("SFTPC", "SFTPB", "SCGB1A1", "IL33", "CCL2"),
    "skin": ("IL17A", "IL22", "S100A8", "S100A9", "IL36A"),
    "kidney": ("EGF", "VEGFA", "REN"),
}
CELL_TYPE_PROGRAMMES = {
    "Macrophage": ("IL1B", "TNFA", "IL6", "IL10", "SPP1", "APOE"),
    "TAM": ("IL10", "TGFB1", "SPP1", "VEGFA"),
    "Kupffer cell": ("IL1B", "IL6", "IL10"),
    "Microglia": ("IL1B", "TNFA", "TGFB1"),
    "T cell": ("IFNG", "IL2", "TNFA", "GZMB"),
    "Exhausted T cell": ("IFNG", "CXCL13", "IL10"),
    "NK cell": ("IFNG", "GZMB", "PRF1"),
    "B cell": ("IL4", "IL21", "LTB"),
    "Fibroblast": ("TGFB1", "COL1A1", "COL3A1", "POSTN"),
    "CAF": ("TGFB1", "COL1A1", "POSTN", "CXCL12"),
    "Endothelial cell": ("VEGFA", "ANGPT2", "CXCL12"),
    "Hepatocyte": ("IL6", "OSM", "SAA1", "CRP"),
    "Malignant cell": ("VEGFA", "SPP1", "MMP9", "GDF15"),
}
# Signatures whose activity is mapped at each sampled spatial point (long form beside coordinates).
COORDINATE_SIGNATURES = (("CytoSig", "IFNG"), ("CytoSig", "IL6"), ("CytoSig", "TNFA"),
                         ("CytoSig", "TGFB1"), ("CytoSig", "IFN1"), ("SecAct", "CXCL10"),
                         ("SecAct", "SPP1"), ("SecAct", "CCL2"))

# --- atlases (§4.0, §8.3) ------------------------------------------------------------------------

ATLASES = ("CIMA", "Inflammation", "scAtlas_Normal", "scAtlas_Cancer")

CIMA_CELL_TYPES = (
    "CD4_Naive", "Mono_CD14", "CD8_Naive", "NK_CD56dim", "B_Naive", "CD4_Treg", "pDC",
    "CD4_Tcm", "CD8_Tem", "Mono_CD16", "B_Memory", "Th17", "cDC2", "MAIT", "CD4_Tem", "CD8_CTL",
    "NK_CD56bright", "Plasma", "Th1", "gdT", "CD8_Tcm", "CD4_CTL", "Tfh", "cDC1", "NKT",
    "Megakaryocyte", "HSPC",
)
assert len(CIMA_CELL_TYPES) == 27
CIMA_L1 = ("CD4_T", "CD8_T", "NK", "B", "Monocyte", "DC", "Other")

INFLAMMATION_CELL_TYPES = (
    "T_CD4_Naive", "Mono_classical", "T_CD8_Naive", "NK_CD56dim", "B_Naive", "T_CD4_Treg", "pDC",
    "T_CD4_Th17", "Mono_nonclassical", "T_CD8_EM", "B_Memory_switched", "Neutrophil", "cDC2",
    "Plasma_cell", "T_CD4_Th1", "Mono_IFN", "T_CD8_EMRA", "MAIT", "NK_CD56bright", "T_CD4_CM",
    "Mono_inflammatory", "T_CD8_CM", "B_Memory_unswitched", "T_CD4_EM", "cDC1", "gdT_V2",
    "T_CD4_Tfh", "T_CD8_Activated", "B_Transitional", "T_CD4_Th2", "Macrophage", "NK_adaptive",
    "T_CD8_IFN", "Plasmablast_IgG", "T_CD4_Activated", "Mono_regulatory", "B_Atypical", "ILC",
    "T_CD8_Exhausted", "DC_CCR7", "gdT_V1", "NKT", "T_CD4_EMRA", "Plasmablast_IgA",
    "Neutrophil_immature", "B_Memory_IFN", "T_CD4_Proliferative", "T_CD8_Proliferative",
    "NK_Proliferative", "NK_IFN", "Mono_intermediate", "cDC3", "DC_mature", "B_Activated",
    "B_Naive_activated", "T_CD4_IFN", "T_CD8_Tc17", "Basophil", "Eosinophil", "Mast_cell",
    "Megakaryocyte", "Platelet", "HSPC", "Progenitor_erythroid", "Progenitor_myeloid",
    "Erythrocyte",
)
assert len(INFLAMMATION_CELL_TYPES) == 66 and len(set(INFLAMMATION_CELL_TYPES)) == 66

# (disease, group) in priority order: the first six cover the six groups.
DISEASES = (
    ("RA", "IMID"), ("COVID", "Acute infection"), ("HIV", "Chronic infection"),
    ("asthma", "Respiratory"), ("cirrhosis", "Liver"), ("CRC", "Solid tumor"),
    ("SLE", "IMID"), ("sepsis", "Acute infection"), ("CD", "IMID"), ("COPD", "Respiratory"),
    ("UC", "IMID"), ("HBV", "Chronic infection"), ("PS", "IMID"), ("flu", "Acute infection"),
    ("BRCA", "Solid tumor"), ("PSA", "IMID"), ("CF", "Respiratory"), ("MS", "IMID"),
    ("HNSCC", "Solid tumor"), ("NPC", "Solid tumor"),
)
assert len(DISEASES) == 20 and len({g for _, g in DISEASES}) == 6
DISEASE_PROGRAMMES = {
    "COVID": ("IFN1", "IL6", "CXCL10", "IFNA1", "IL1RN"), "sepsis": ("IL6", "IFN1", "IL10", "IL1B"),
    "flu": ("IFN1", "IFNL", "CXCL10"), "RA": ("TNFA", "IL6", "TNF", "MMP3"),
    "CD": ("IL22", "IL17A", "TNFA", "TNF"), "UC": ("IL22", "IL17A", "TNFA"),
    "SLE": ("IFN1", "IFNA1", "TNFSF13B"), "PS": ("IL17A", "IL22", "TNFA", "IL36"),
    "PSA": ("IL17A", "TNFA"), "MS": ("IFNG", "IL17A"), "asthma": ("IL4", "IL13", "IL5", "CCL17"),
    "COPD": ("IL1B", "CXCL8", "MMP9"), "CF": ("IL1B", "CXCL8", "IL6"), "HIV": ("IFNG", "IFN1"),
    "HBV": ("IFNG", "IFN1", "IL10"), "cirrhosis": ("TGFB1", "IL6", "COL1A1"),
    "CRC": ("TGFB1", "VEGFA", "IL10"), "BRCA": ("TGFB1", "VEGFA"), "HNSCC": ("TGFB1", "IL6"),
    "NPC": ("IFNG", "TGFB1"),
}

# Inflammation strata. The real labels are in no file of the repository: the dashboard counts 11
# diseases with 39 severity stages (listed mild to severe), treatment-response cohorts of six
# diseases, and sampling timepoints T0-T2 (the number of timepoints each disease has here).
SEVERITY = (
    ("COVID", ("WHO1", "WHO2", "WHO3", "WHO4", "WHO5", "WHO6", "WHO7")), ("COPD", ("GOLD3", "GOLD4")),
    ("SLE", ("Managed", "Flare")), ("asthma", ("GINA1", "GINA2", "GINA3", "GINA4")),
    ("sepsis", ("Type1", "Type2", "Type3", "Type4")), ("MS", ("EDSS1", "EDSS2", "EDSS3", "EDSS4", "EDSS5")),
    ("HBV", ("Stage1", "Stage2", "Stage3", "Stage4")), ("cirrhosis", ("Compensated", "Decompensated")),
    ("CRC", ("Early", "Advanced")), ("HNSCC", ("T1", "T2", "T3", "T4")), ("NPC", ("II", "III", "IVa")),
)
assert len(SEVERITY) == 11 and sum(len(s) for _, s in SEVERITY) == 39
TREATMENT_DISEASES = ("RA", "CD", "UC", "PS", "PSA", "SLE")
LONGITUDINAL = (("COVID", 3), ("RA", 1), ("sepsis", 3), ("flu", 2), ("SLE", 2))
COHORT_PAIRS = ("Main vs Validation", "Main vs External", "Validation vs External")

BIOCHEMISTRY = ("ALT", "AST", "ALP", "GGT", "TBIL", "DBIL", "TP", "ALB", "GLB", "BUN", "CREA",
                "UA", "GLU", "TG", "TC", "HDL-C", "LDL-C", "CK", "LDH")
assert len(BIOCHEMISTRY) == 19
# CIMA donor metadata (the sample layer of builders/demo_data/atlas/cima.py): the groups the
# differential tests pair up and the stratification compares. The metadata's raw smoking labels
# (column `smoking_ststus`) are unknown; the demo writes the spelling P06 normalises them to.
CIMA_SEXES = ("Male", "Female")
CIMA_BLOOD_TYPES = ("O", "A", "B", "AB")
CIMA_SMOKING = ("Never", "Former", "Current")

# The real atlas's 35 organs (visualization/index.html EMBEDDED_STATS), in priority order: the first
# six hold the organs the first six cancer types map to (organ_cancer_matrix, adjacent tissue).
SCATLAS_ORGANS = (
    "Blood", "Lung", "Liver", "Colon", "Kidney", "Oral", "Skin", "Breast", "Pancreas", "Stomach",
    "Heart", "Spleen", "BoneMarrow", "LymphNode", "SmallIntestine", "Esophagus", "Prostate", "Ovary",
    "Uterus", "Testis", "Thymus", "Bladder", "Eye", "Fat", "Rectum", "Trachea", "Vasculature",
    "SalivaryGland", "SkeletalMuscle", "Nose", "Omentum", "Tongue", "Ureter", "Vagina", "CommonBileDuct",
)
assert len(SCATLAS_ORGANS) == 35
SCATLAS_GENERIC = ("T cell CD4", "T cell CD8", "NK cell", "B cell", "Plasma cell", "Macrophage",
                   "Monocyte", "Dendritic cell", "Mast cell", "Endothelial cell", "Fibroblast",
                   "Smooth muscle cell", "Pericyte")
SCATLAS_SPECIFIC = {
    "Lung": ("AT1", "AT2", "Ciliated", "Club"), "Liver": ("Hepatocyte", "Cholangiocyte", "Kupffer cell"),
    "Colon": ("Enterocyte", "Goblet cell", "Colonocyte"), "Kidney": ("Proximal tubule", "Podocyte"),
    "Heart": ("Cardiomyocyte",), "Skin": ("Keratinocyte", "Melanocyte"),
    "Blood": ("Classical monocyte", "Neutrophil", "Platelet"),
    "Pancreas": ("Acinar cell", "Ductal cell", "Beta cell"), "Breast": ("Luminal cell", "Basal cell"),
    "Stomach": ("Pit cell", "Chief cell"), "SmallIntestine": ("Enterocyte", "Paneth cell"),
    "Thymus": ("Thymocyte", "TEC"), "Testis": ("Spermatocyte", "Sertoli cell"),
    "Oral": ("Keratinocyte", "Salivary acinar cell"), "SkeletalMuscle": ("Myocyte", "Satellite cell"),
    "Fat": ("Adipocyte",), "Eye": ("Photoreceptor", "Retinal pigment epithelium"),
}
SCATLAS_CANCER_CELL_TYPES = (
    "Malignant cell", "CAF", "TAM", "CD8 T exhausted", "Treg", "CD4 T", "NK cell", "B cell",
    "Plasma cell", "Endothelial tip cell", "Myofibroblast", "Monocyte", "cDC1", "cDC2", "pDC",
    "Mast cell", "Neutrophil", "Pericyte", "Cycling T cell", "MAIT", "Mregs DC", "SPP1+ macrophage",
    "C1QC+ macrophage", "iCAF", "myCAF", "Lymphatic endothelial", "Epithelial cell", "Smooth muscle",
    "Tfh", "gdT",
)
assert len(SCATLAS_CANCER_CELL_TYPES) == 30
# scAtlas pan-cancer: the 29 cancer types in priority order. The first seven are those whose
# adjacent tissue the real pipeline maps to a normal organ (CRC, HCC, LUAD, KIRC, HNSC, ICC, cSCC);
# the 13 labelled codes follow; the rest as in the immune-infiltration notes and organ map.
SCATLAS_CANCER_TYPES = (
    "CRC", "HCC", "LUAD", "KIRC", "HNSC", "ICC", "cSCC", "BRCA", "PAAD", "STAD", "ESCA", "THCA", "LYM",
    "KIRP", "TGCT", "NET", "LUSC", "OV", "SKCM", "PRAD", "ALM", "GBM", "BLCA", "UCEC", "CESC", "NPC",
    "SARC", "MB", "GIST",
)
assert len(SCATLAS_CANCER_TYPES) == 29
# Cancer pseudobulk subClusters (PREFIX##_Subtype_MARKER, as the real atlas names them), in priority
# order: the first 20 hold every category the immune, exhaustion and CAF analyses classify by name
# (malignant, T-cell states and subsets, each myeloid and lymphoid category, each CAF class, stroma).
SCATLAS_CANCER_SUBCLUSTERS = (
    "Epi_Malignant_EPCAM", "CD8T05_Tex_PDCD1", "CD8T06_Tex_CXCL13", "CD8T02_Tem_GZMK", "CD8T04_Tcm_IL7R",
    "CD4T01_Tn_CCR7", "CD4T08_Treg_FOXP3", "M09_Mph_SPP1", "M05_Mo_CD14", "M02_cDC2_CD1C", "M13_Neu_CXCL8",
    "M15_Mast_TPSAB1", "I01_NK_FCGR3A", "I08_ILC3_KIT", "B01_Naive_TCL1A", "S22_iCAF_CXCL12",
    "S23_myCAF_ACTA2", "S24_apCAF_HLA-DRA", "S05_Fb_PI16", "E01_Endo_ACKR1",
    "B12_Plasma_IGHA2", "M03_pDC_LILRA4", "CD4T03_Tfh_CXCL13", "M07_Mph_C1QC", "S15_Peri_RGS5",
    "CD4T05_Tem_ANXA1", "E03_Lymph_PROX1", "Epi_Cycling_MKI67", "M06_Mo_FCGR3A", "I02_NK_XCL1",
    "S12_Fb_COL1A1", "M01_cDC1_CLEC9A", "CD8T03_Temra_GZMB", "S20_SMC_MYH11", "B05_Memory_CD27",
    "M18_Mph_LYVE1",
)
assert len(set(SCATLAS_CANCER_SUBCLUSTERS)) == 36

# Cell-type programmes for the atlases (§8.3), matched by substring of the cell-type name.
ATLAS_CELL_PROGRAMMES = (
    ("Th17", ("IL17A", "IL22", "IL17F", "IL21")), ("Treg", ("TGFB1", "IL10", "TGFB2")),
    ("CD8", ("IFNG", "TNFA", "GZMB", "TNF")), ("CTL", ("IFNG", "TNFA", "GZMB")),
    ("NK", ("IFNG", "TNFA", "GZMB", "PRF1")), ("Mono", ("IL1B", "IL6", "TNFA", "TNF", "IL1A")),
    ("Macrophage", ("IL1B", "IL6", "TNFA", "IL10", "SPP1")), ("pDC", ("IFN1", "IFNA1", "IFNL")),
    ("Th1", ("IFNG", "IL2")), ("Tfh", ("IL21", "CXCL13")), ("Neutrophil", ("IL1B", "CXCL8", "S100A8")),
    ("B_", ("IL4", "IL21", "LTB")), ("Plasma", ("IL6", "IL10")), ("Fibroblast", ("TGFB1", "COL1A1")),
    ("CAF", ("TGFB1", "COL1A1", "POSTN")), ("TAM", ("IL10", "SPP1", "TGFB1")),
    ("Malignant", ("VEGFA", "GDF15", "SPP1")), ("Endothelial", ("VEGFA", "ANGPT2")),
)

CROSS_SAMPLE_FILES = (  # (file atlas, level, n donors)
    ("cima", "donor_only", 421), ("cima", "donor_l1", 421),
    ("inflammation", "donor_only", 817), ("inflammation", "donor_l1", 817),
    ("scatlas", "donor_only", 317), ("scatlas", "donor_l1", 317),
)
CROSS_SAMPLE_L1 = {
    "cima": ("CD4_T", "CD8_T", "NK", "B", "Monocyte", "DC"),
    "inflammation": ("T_CD4", "T_CD8", "NK", "B", "Mono", "DC", "Neutrophil"),
    "scatlas": ("T cell", "NK cell", "B cell", "Myeloid", "Endothelial", "Fibroblast", "Epithelial"),
}
# LinCytoSig cell-type prefix -> the l1 cell type it matches, per atlas (None: unmappable)
LIN_TO_L1 = {
    "cima": {"Monocyte": "Monocyte", "Macrophage": "Monocyte", "CD4_T": "CD4_T", "CD8_T": "CD8_T",
             "NK": "NK", "B_Cell": "B", "DC": "DC", "Treg": "CD4_T", "pDC": "DC"},
    "inflammation": {"Monocyte": "Mono", "Macrophage": "Mono", "CD4_T": "T_CD4", "CD8_T": "T_CD8",
                     "NK": "NK", "B_Cell": "B", "DC": "DC", "Neutrophil": "Neutrophil",
                     "Treg": "T_CD4", "pDC": "DC"},
    "scatlas": {"Monocyte": "Myeloid", "Macrophage": "Myeloid", "CD4_T": "T cell", "CD8_T": "T cell",
                "NK": "NK cell", "B_Cell": "B cell", "DC": "Myeloid", "Fibroblast": "Fibroblast",
                "Endothelial": "Endothelial", "Epithelial": "Epithelial", "Treg": "T cell"},
}


# --- CIMA eQTLs and metabolites (builders/demo_data/atlas/cima.py) -------------------------------

# 69 cell types of the CIMA eQTL maps (finer than the 27 level-2 types), in priority order.
CIMA_EQTL_CELL_TYPES = (
    "CD4_Tn_CCR7", "Mono_CD14_S100A8", "CD8_Tn_CCR7", "NK_CD56dim_FCGR3A", "B_naive_TCL1A",
    "CD4_Treg_FOXP3", "pDC_LILRA4", "CD4_Tcm_IL7R", "CD8_Tem_GZMK", "Mono_CD16_FCGR3A", "B_memory_CD27",
    "CD4_Th17_RORC", "cDC2_CD1C", "MAIT_SLC4A10", "CD4_Tem_GZMK", "CD8_CTL_GZMB", "NK_CD56bright_SELL",
    "Plasma_IGHA", "CD4_Th1_CXCR3", "gdT_TRDV2", "CD8_Tcm_IL7R", "CD4_CTL_GZMH", "CD4_Tfh_CXCR5",
    "cDC1_CLEC9A", "NKT_KLRB1", "Megakaryocyte_PPBP", "HSPC_CD34", "CD4_Tn_SOX4", "CD4_Tcm_CXCR5",
    "CD4_Tem_CCR6", "CD4_Treg_IKZF2", "CD4_Th2_GATA3", "CD4_Tr1_IL10", "CD4_Tisg_IFI44L", "CD8_Tn_SOX4",
    "CD8_Tem_CX3CR1", "CD8_CTL_KLRD1", "CD8_Trm_ITGAE", "CD8_Tisg_IFI44L", "CD8_Tex_PDCD1", "gdT_TRDV1",
    "ILC2_GATA3", "ILC3_KIT", "NK_CD56dim_CX3CR1", "NK_adaptive_KLRC2", "NK_proliferating_MKI67",
    "B_naive_IGHD", "B_transitional_CD38", "B_memory_IGHG", "B_atypical_ITGAX", "B_activated_CD69",
    "Plasmablast_MKI67", "Plasma_IGHG", "Mono_CD14_HLA-DR", "Mono_CD14_IFI44L", "Mono_CD14_IL1B",
    "Mono_intermediate_CD14_FCGR3A", "cDC2_FCER1A", "DC_mature_LAMP3", "AS_DC_AXL", "MEP_GATA1",
    "Basophil_HDC", "Eosinophil_CLC", "Neutrophil_FCGR3B", "Mast_TPSAB1", "Erythrocyte_HBB",
    "T_proliferating_MKI67", "CD4_Tn_activated_CD69", "CD8_Tn_activated_CD69",
)
assert len(CIMA_EQTL_CELL_TYPES) == 69 and len(set(CIMA_EQTL_CELL_TYPES)) == 69

# eQTL genes: the cytokine genes and SecAct targets first, then other real symbol families.
_GENE_FAMILIES = (
    ("ZNF", range(2, 900)), ("TMEM", range(2, 270)), ("CCDC", range(3, 200)), ("RNF", range(2, 226)),
    ("LRRC", range(1, 76)), ("ANKRD", range(1, 66)), ("TRIM", range(2, 76)), ("USP", range(1, 54)),
    ("FAM", (f"{n}{x}" for n in range(3, 230) for x in "AB")), ("KIAA", (f"{n:04d}" for n in range(100, 2040))),
    ("SLC", (f"{n}A{m}" for n in range(1, 51) for m in range(1, 10))), ("LINC", (f"{n:05d}" for n in range(1, 3700))),
)


def _eqtl_genes() -> tuple[str, ...]:
    genes = list(dict.fromkeys([cytosig_gene(c) for c in CYTOSIG] + list(SECACT)))
    seen = set(genes)
    for prefix, suffixes in _GENE_FAMILIES:
        for suffix in suffixes:
            name = f"{prefix}{suffix}"
            if name not in seen:
                seen.add(name)
                genes.append(name)
    return tuple(genes[:9600])


EQTL_GENES = _eqtl_genes()
assert len(EQTL_GENES) == 9600

# Plasma metabolites and lipids (CIMA_correlation_metabolites.csv has 500).
_AMINO_AND_OTHERS = (
    "Alanine", "Glutamine", "Glycine", "Histidine", "Isoleucine", "Leucine", "Valine", "Phenylalanine",
    "Tyrosine", "Tryptophan", "Kynurenine", "Creatinine", "Lactate", "Pyruvate", "Citrate", "Acetate",
    "3-Hydroxybutyrate", "Glucose", "Urate", "Taurine",
)


def _metabolites() -> tuple[str, ...]:
    chains = [f"{c}:{d}" for c in (14, 16, 18, 20, 22) for d in range(0, 7) if d <= c // 3]
    lipids = [f"{cls}({a}/{b})" for a in chains for b in chains for cls in ("PC", "PE")]
    lipids += [f"LPC({a})" for a in chains] + [f"SM(d18:1/{a})" for a in chains]
    lipids += [f"TG({n}:{d})" for n in range(46, 60, 2) for d in range(0, 8)]
    names = list(_AMINO_AND_OTHERS)
    for i in range(max(len(lipids), 1)):  # interleave classes so a small scale keeps a mix
        names.append(lipids[(i * 37) % len(lipids)])
    return tuple(dict.fromkeys(names))[:500]


METABOLITES = _metabolites()
assert len(METABOLITES) == 500
# --- validation pages -----------------------------------------------------------------------------

GTEX_TISSUES = (  # tissue_type values with >= 30 samples (sorted, as the validation writer lists them)
    "Adipose - Subcutaneous", "Adipose - Visceral (Omentum)", "Adrenal Gland", "Artery - Aorta",
    "Artery - Coronary", "Artery - Tibial", "Brain - Cortex", "Brain - Cerebellum", "Breast - Mammary Tissue",
    "Colon - Sigmoid", "Colon - Transverse", "Esophagus - Mucosa", "Esophagus - Muscularis", "Heart - Atrial Appendage",
    "Heart - Left Ventricle", "Kidney - Cortex", "Liver", "Lung", "Muscle - Skeletal", "Nerve - Tibial", "Ovary",
    "Pancreas", "Pituitary", "Prostate", "Skin - Sun Exposed (Lower leg)", "Spleen", "Stomach", "Testis",
    "Whole Blood",
)
assert len(GTEX_TISSUES) == 29
TCGA_CANCERS = (
    "ACC", "BLCA", "BRCA", "CESC", "CHOL", "COAD", "DLBC", "ESCA", "GBM", "HNSC", "KICH", "KIRC", "KIRP",
    "LAML", "LGG", "LIHC", "LUAD", "LUSC", "MESO", "OV", "PAAD", "PCPG", "PRAD", "READ", "SARC", "SKCM",
    "STAD", "TGCT", "THCA", "THYM", "UCEC", "UCS", "UVM",
)
assert len(TCGA_CANCERS) == 33
