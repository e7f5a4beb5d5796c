"""The entity index each domain's builder makes in its own file, for SearchService
(cytoatlas/serving/search.py; protos/TYPED_RPCS.md, SearchService).

Three derived tables per domain, named after it (a table is served by exactly one service):

  <domain>_search_mentions  where each entity occurs: one row per (entity, context, source table)
                            with its row count. The context is the atlas (atlas file), the dataset
                            (parse_10M / Tahoe, perturbation) or the technology (spatial); '' when
                            a table is not specific to one.
  <domain>_search_entities  one row per entity (type, name, entity_id = 'type:name'), with its
                            description, signature type, rows, contexts and tables it occurs in,
                            and its entity_row: its place in key order, which every term of it
                            carries, so that Search reads the page's entities by a sorted integer.
  <domain>_search_terms     every spelling that finds an entity, keyed and sorted by its
                            normalised key (lower case, only letters and digits: 'IL-6' -> 'il6')
                            so prefix scans read few blocks: the name; the aliases the domain
                            declares (the signature alias table's HGNC symbol <-> signature name,
                            a parse_10M treatment name, a cancer type's label, a dataset's file
                            name); and the spelled-out and short forms of cytokine families,
                            generated in SQL from the names and aliases (IL6 -> 'interleukin 6'
                            and 'IL-6', IFNG -> 'interferon gamma' and 'IFN-gamma', TNFA ->
                            'tumor necrosis factor' and 'TNF-alpha', TGFB1 -> 'transforming growth
                            factor beta 1' and 'TGF-beta1', ...).

A domain module supplies three SELECTs over its own tables; `search_tables` wraps them into the
three TableSpecs, built after every table they read.
"""

from __future__ import annotations

from cytoatlas.domains.spec import NON_NEGATIVE, Column, TableSpec, count, integer, key_text, text

# The text of the terms and entities tables, which SearchService's ranking and completion
# statements read for every row on every call, is stored uncompressed (spec.Column.compression):
# on the scale-1 atlas file, through the service, Search took 19.4 ms instead of 23.6 and
# Autocomplete 7.0 instead of 9.9 (the two files side by side, 8 interleaved rounds); the file
# grows by a few MB.
PLAIN = "uncompressed"

# Every entity type, in the order that breaks score ties (a cytokine before the gene of the same
# name), with what the type holds. A domain holds some of them; a type another domain holds is
# valid everywhere (a search for drugs in the atlas file finds none rather than failing).
ENTITY_TYPES: dict[str, tuple[str, str]] = {  # type -> (one of them, what the type holds)
    "cytokine": ("CytoSig cytokine signature", "CytoSig cytokine signatures (and parse_10M stimulation cytokines)"),
    "protein": ("SecAct secreted-protein signature", "SecAct secreted-protein signatures"),
    "lincytosig": ("LinCytoSig signature", "LinCytoSig cell-type-specific cytokine signatures"),
    "gene": ("Gene", "Gene symbols (expression data, the signatures' HGNC symbols)"),
    "cell_type": ("Cell type", "Cell types of the atlases, parse_10M PBMCs and spatial datasets"),
    "disease": ("Disease", "Inflammation Atlas diseases"),
    "disease_group": ("Disease group", "Inflammation Atlas disease groups"),
    "organ": ("Organ", "scAtlas organs"),
    "tissue": ("Tissue", "Tissues (spatial datasets, Tahoe cell lines)"),
    "cancer_type": ("Cancer type", "Cancer types (scAtlas, Tahoe cell lines)"),
    "drug": ("Drug", "Tahoe-100M drugs"),
    "drug_class": ("Drug class", "Tahoe-100M drug classes"),
    "cell_line": ("Cell line", "Tahoe-100M cancer cell lines"),
    "pathway": ("Pathway", "Signalling pathways (Tahoe pathway activation, cross-atlas enrichment)"),
    "technology": ("Spatial technology", "Spatial transcriptomics technologies"),
    "niche": ("Spatial niche", "Spatial niches (neighbourhood labels)"),
    "atlas": ("Atlas", "The observational atlases"),
    "dataset": ("Dataset", "Datasets (perturbation screens, spatial datasets, bulk validation cohorts)"),
}
# Signature types <-> the entity type of their signatures.
SIGNATURE_ENTITY_TYPES = {"CytoSig": "cytokine", "SecAct": "protein", "LinCytoSig": "lincytosig"}


def table_names(domain: str) -> dict[str, str]:
    """The three index tables of one domain: {'mentions': ..., 'entities': ..., 'terms': ...}."""
    return {part: f"{domain}_search_{part}" for part in ("mentions", "entities", "terms")}


def normalised_key(sql: str) -> str:
    """SQL: the search key of a text (lower case, every character but letters and digits removed)."""
    return rf"regexp_replace(lower({sql}), '[^\p{{L}}\p{{N}}]+', '', 'g')"


def search_key(text: str) -> str:
    """The search key of a query, as `normalised_key` makes the terms' (letters and digits are
    Unicode categories L and N in both): computed here so the ranking statement gets it as a
    constant (tests/test_search.py checks the two agree on every term of the demo index)."""
    return "".join(c for c in text.lower() if c.isalnum())


def entity_type_of(signature_type_sql: str) -> str:
    """SQL: the entity type of a signature, from its signature type."""
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SIGNATURE_ENTITY_TYPES.items())
    return f"CASE {signature_type_sql} {cases} END"


# Families of cytokine names: (pattern on the whole name, case-insensitive; spelled-out form;
# short form or NULL). Applied to the names and aliases of cytokines, proteins and genes; the
# spelled-out form is written in lower case, the short form upper-cased around its template's text.
FAMILIES = (
    (r"^il-?(\d+)([a-z]?)$", r"interleukin \1\2", r"IL-\1\2"),
    (r"^il-?1a$", "interleukin 1 alpha", None),
    (r"^il-?1b$", "interleukin 1 beta", None),
    (r"^ifn-?(g|gamma)$", "interferon gamma", "IFN-gamma"),
    (r"^ifn-?(a|alpha)\d*$", "interferon alpha", "IFN-alpha"),
    (r"^ifn-?(b|beta)\d*$", "interferon beta", "IFN-beta"),
    (r"^ifn-?1$", "type i interferon", None),
    (r"^ifn-?(l|lambda)\d*$", "interferon lambda", "IFN-lambda"),
    (r"^tnf-?(a|alpha)?$", "tumor necrosis factor", "TNF-alpha"),
    (r"^lta$", "lymphotoxin alpha", None),
    (r"^tgf-?(b|beta)-?(\d?)$", r"transforming growth factor beta \2", r"TGF-beta\2"),
    (r"^(gm-?csf|csf2)$", "granulocyte-macrophage colony-stimulating factor", "GM-CSF"),
    (r"^(g-?csf|csf3)$", "granulocyte colony-stimulating factor", "G-CSF"),
    (r"^(m-?csf|csf1)$", "macrophage colony-stimulating factor", "M-CSF"),
    (r"^vegf-?([a-d]?)$", r"vascular endothelial growth factor \1", None),
    (r"^egf$", "epidermal growth factor", None),
    (r"^fgf-?(\d+)$", r"fibroblast growth factor \1", None),
    (r"^hgf$", "hepatocyte growth factor", None),
    (r"^bmp-?(\d+)$", r"bone morphogenetic protein \1", None),
    (r"^gdf-?(\d+)$", r"growth differentiation factor \1", None),
    (r"^bdnf$", "brain-derived neurotrophic factor", None),
    (r"^lif$", "leukemia inhibitory factor", None),
    (r"^osm$", "oncostatin m", None),
    (r"^(trail|tnfsf10)$", "tnf-related apoptosis-inducing ligand", None),
    (r"^(tweak|tnfsf12)$", "tnf-related weak inducer of apoptosis", None),
    (r"^cd40-?lg?$", "cd40 ligand", None),
    (r"^ccl-?(\d+)$", r"c-c motif chemokine ligand \1", None),
    (r"^cxcl-?(\d+)$", r"c-x-c motif chemokine ligand \1", None),
    (r"^no$", "nitric oxide", None),
    (r"^wnt-?(\d+[a-z]?)$", r"wnt family member \1", None),
)
FAMILY_TYPES = ("cytokine", "protein", "gene")


def _sql_text(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _families_sql(base: str) -> str:
    """SELECT entity_type, name, term, term_kind: the spelled-out and short forms of the terms of
    `base` (a CTE) that a family pattern matches. One SELECT per pattern, so each regular
    expression is a constant DuckDB compiles once (a pattern read from a table is compiled per
    row: 45 s instead of 1 s on the atlas's 47,000 terms)."""
    types = ", ".join(f"'{t}'" for t in FAMILY_TYPES)
    parts = []
    for pattern, spelled, short in FAMILIES:
        match = f"FROM {base} WHERE entity_type IN ({types}) AND regexp_full_match(term, {_sql_text(pattern)}, 'i')"
        parts.append(f"SELECT entity_type, name, trim(regexp_replace(lower(term), {_sql_text(pattern)}, "
                     f"{_sql_text(spelled)}, 'i')) AS term, 'spelled_out' AS term_kind {match}")
        if short is not None:
            parts.append(f"SELECT entity_type, name, regexp_replace(upper(term), {_sql_text(pattern)}, "
                         f"{_sql_text(short)}, 'i'), 'short_form' {match}")
    return "\n                UNION ALL ".join(parts)


def _types_values(labels: bool = True) -> str:
    return ", ".join(f"('{name}', {rank}" + (f", {_sql_text(label)})" if labels else ")")
                     for rank, (name, (label, _)) in enumerate(ENTITY_TYPES.items(), start=1))


ALIAS_SEPARATOR = " | "  # between the aliases of an entity in <domain>_search_entities.aliases
# Which spelling of an entity a term is; a term with several kinds keeps the first.
TERM_KINDS = ("name", "alias", "hgnc_symbol", "cytosig_name", "signature", "treatment", "label", "filename",
              "accession", "short_form", "spelled_out")


def _kind_rank(sql: str) -> str:
    return "CASE " + sql + " " + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(TERM_KINDS)) + " ELSE 99 END"


def search_tables(domain: str, mentions_sql: str, entities_sql: str, aliases_sql: str,
                  depends_on: tuple[str, ...]) -> tuple[TableSpec, ...]:
    """The domain's three index tables, in build order (mentions, terms, entities).

    mentions_sql: SELECT entity_type, name, context, source_table, n_rows (one row per entity,
      context and table; duplicates are summed).
    entities_sql: SELECT entity_type, name, description, signature_type for entities with a
      description or signature type of their own, or that occur in no mention (e.g. a gene only
      named by gene_info); NULL description = the type's label and contexts ("Cell type (CIMA,
      Inflammation)").
    aliases_sql: SELECT entity_type, name, term, term_kind: other spellings of the entities
      (term_kind one of TERM_KINDS); rows naming no entity are dropped.
    """
    names = table_names(domain)
    mentions, entities, terms = names["mentions"], names["entities"], names["terms"]
    mentions_spec = TableSpec(
        name=mentions,
        description="Search index: where each entity occurs (per context and source table, with rows).",
        derived_sql=f"""
            SELECT entity_type, name, entity_type || ':' || name AS entity_id, context, source_table,
                   sum(n_rows) AS n_rows
            FROM ({mentions_sql}) WHERE name IS NOT NULL AND name <> ''
            GROUP BY ALL
        """,
        depends_on=depends_on,
        columns=(
            key_text("entity_type", "Entity type (cytoatlas/domains/search_index.py ENTITY_TYPES)."),
            key_text("name", "The entity's name, as the data tables write it."),
            key_text("entity_id", "entity_type:name."),
            key_text("context", "The atlas, dataset or technology it occurs in; '' when the table is not specific to one."),
            key_text("source_table", "The table it occurs in."),
            count("n_rows", "Rows of that table naming it in that context.", nullable=False),
        ),
        key=("entity_type", "name", "context", "source_table"),
    )
    terms_spec = TableSpec(
        name=terms,
        description="Search index: every spelling that finds an entity (name, aliases, spelled-out families), "
                    "sorted by its normalised key.",
        derived_sql=f"""
            WITH e AS (SELECT entity_type, name FROM ({entities_sql}) WHERE name IS NOT NULL AND name <> ''
                       UNION SELECT entity_type, name FROM {mentions}),
            base AS (SELECT entity_type, name, name AS term, 'name' AS term_kind FROM e
                     UNION ALL
                     SELECT a.entity_type, a.name, a.term, a.term_kind FROM ({aliases_sql}) AS a
                     JOIN e USING (entity_type, name) WHERE a.term IS NOT NULL AND trim(a.term) <> ''),
            generated AS ({_families_sql("base")}),
            every AS (SELECT * FROM base UNION ALL SELECT * FROM generated),
            types(entity_type, type_rank) AS (VALUES {_types_values(labels=False)}),
            terms AS (SELECT {normalised_key('term')} AS term_key, entity_type, name, term, lower(term) AS term_lower,
                             arg_min(term_kind, {_kind_rank('term_kind')}) AS term_kind,
                             bool_or(term_kind = 'name') AS is_name
                      FROM every WHERE {normalised_key('term')} <> '' GROUP BY ALL)
            SELECT terms.*, t.type_rank,
                   CAST(row_number() OVER (PARTITION BY entity_type, name ORDER BY term) AS INTEGER) AS term_order,
                   CAST(dense_rank() OVER (ORDER BY entity_type, name) - 1 AS INTEGER) AS entity_row
            FROM terms JOIN types t USING (entity_type)
        """,
        depends_on=(*depends_on, mentions),
        columns=(
            key_text("term_key", "The term in lower case with every character but letters and digits removed "
                                 "('IL-6' -> 'il6'): what matches and prefix scans compare.", compression=PLAIN),
            key_text("entity_type", "The entity's type.", compression=PLAIN),
            key_text("name", "The entity's name.", compression=PLAIN),
            key_text("term", "The spelling, as written (the name, an alias, a spelled-out family name).",
                     compression=PLAIN),
            key_text("term_lower", "lower(term): the case-insensitive match.", compression=PLAIN),
            key_text("term_kind", "name, alias, hgnc_symbol, cytosig_name, signature, treatment, label, filename, "
                                  "accession, short_form or spelled_out.", compression=PLAIN),
            Column("is_name", "BOOLEAN", "The term is the entity's name.", nullable=False),
            integer("type_rank", "The entity type's rank (as in the entities table): ranking needs no join.",
                    nullable=False),
            integer("term_order", "The term's place among its entity's terms, by term: a stable tie-break.",
                    nullable=False),
            integer("entity_row", "Its entity's entity_row (the entities table): what Search joins on.", nullable=False,
                    check=NON_NEGATIVE),
        ),
        key=("term_key", "entity_type", "name", "term"),
    )
    entities_spec = TableSpec(
        name=entities,
        description="Search index: one row per entity (type, name, description, where it occurs).",
        derived_sql=f"""
            WITH e AS ({entities_sql}),
            types(entity_type, type_rank, type_label) AS (VALUES {_types_values()}),
            all_names AS (SELECT entity_type, name, any_value(entity_row) AS entity_row,
                                 string_agg(term, '{ALIAS_SEPARATOR}' ORDER BY term) FILTER (WHERE NOT is_name) AS aliases
                          FROM {terms} GROUP BY ALL),
            described AS (SELECT entity_type, name, min(description) AS description,
                                 min(signature_type) AS signature_type FROM e GROUP BY ALL),
            counted AS (SELECT entity_type, name, sum(n_rows) AS n_rows,
                               count(DISTINCT context) FILTER (WHERE context <> '') AS n_contexts,
                               string_agg(DISTINCT context, ', ' ORDER BY context) FILTER (WHERE context <> '') AS contexts,
                               string_agg(DISTINCT source_table, ', ' ORDER BY source_table) AS tables
                        FROM {mentions} GROUP BY ALL)
            SELECT n.entity_type, n.name, n.entity_type || ':' || n.name AS entity_id, t.type_rank,
                   coalesce(d.description, t.type_label || CASE WHEN c.contexts <> '' THEN ' (' || c.contexts || ')' ELSE '' END)
                       AS description, d.signature_type,
                   coalesce(c.n_rows, 0) AS n_rows, coalesce(c.n_contexts, 0) AS n_contexts,
                   coalesce(c.contexts, '') AS contexts, coalesce(c.tables, '') AS tables,
                   coalesce(n.aliases, '') AS aliases, n.entity_row
            FROM all_names n JOIN types t USING (entity_type)
            LEFT JOIN described d USING (entity_type, name) LEFT JOIN counted c USING (entity_type, name)
        """,
        depends_on=(*depends_on, mentions, terms),
        columns=(
            key_text("entity_type", "Entity type.", compression=PLAIN),
            key_text("name", "The entity's name, as the data tables write it.", compression=PLAIN),
            key_text("entity_id", "entity_type:name: the id GetEntityActivity and GetEntityCorrelations take.",
                     compression=PLAIN),
            integer("type_rank", "The type's place in ENTITY_TYPES: breaks score ties (cytokine first).",
                    nullable=False),
            text("description", "What the entity is (curated where the file has a description).", compression=PLAIN),
            text("signature_type", "CytoSig, SecAct or LinCytoSig for a signature; NULL otherwise.", compression=PLAIN),
            count("n_rows", "Rows naming it over the index's source tables.", nullable=False),
            count("n_contexts", "Atlases, datasets or technologies it occurs in.", nullable=False),
            Column("contexts", "VARCHAR", "Those contexts, ', '-joined in order.", nullable=False,
                   compression=PLAIN),
            Column("tables", "VARCHAR", "The tables it occurs in, ', '-joined in order.", nullable=False,
                   compression=PLAIN),
            Column("aliases", "VARCHAR", f"Its other terms (search terms), {ALIAS_SEPARATOR!r}-joined in order.",
                   nullable=False, compression=PLAIN),
            integer("entity_row", "The entity's place in this table, from 0 in key order (entity_type, name): "
                                  "the terms carry it, and Search reads a page's entities by it.",
                    nullable=False, check=NON_NEGATIVE),
        ),
        key=("entity_type", "name"),
    )
    return mentions_spec, terms_spec, entities_spec
