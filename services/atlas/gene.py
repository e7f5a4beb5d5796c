"""cytoatlas.atlas.v1.GeneService: the gene page, one RPC per need of the real /gene router. Names
resolve through TypedQueries.check (exact, case-insensitive, alias table); every list and count is
a query through cytoatlas.serving.typed_rpc (protos/TYPED_RPCS.md)."""

from __future__ import annotations

import grpc

from cytoatlas.atlas.v1 import gene_service_pb2 as pb
from cytoatlas.atlas.v1 import gene_service_pb2_grpc as pb_grpc
from cytoatlas.serving.errors import Reason, ServiceError, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import TypedService, TypedServicer, required, signature_type, top_n
from cytoatlas.table.v1 import table_service_pb2 as table_pb

CELL_TYPES, ORGANS = "atlas_celltype_activity", "scatlas_organs"
DISEASES, CORRELATIONS = "gene_disease_activity", "gene_correlations"
CONSERVED, ACTIVITY = "cross_atlas_conserved", "activity"
EXPRESSION, BOXPLOTS, GENES = "gene_expression", "expression_boxplot", "gene_list"
INFO, ALIASES = "gene_info", "signature_aliases"
OVERVIEW_TABLES = (CELL_TYPES, ORGANS, DISEASES, CORRELATIONS)
CORRELATION_CATEGORIES = ("age", "bmi", "biochemistry", "metabolites")
OVERVIEW_CORRELATIONS = ["age", "bmi", "biochemistry"]  # the whole-sample CIMA correlations
BOXPLOT_TYPES = ("expression", "CytoSig", "SecAct")
SIGNIFICANT = ("qvalue", "<", 0.05)
ARROW = table_pb.RESULT_FORMAT_ARROW


class _NoPage:
    page_token = ""


def _scope(kind: str, signature: str) -> list:
    return [("signature_type", "=", kind), ("signature", "=", signature)]


class GeneServicer(TypedServicer, pb_grpc.GeneServiceServicer):
    # -- shared steps ----------------------------------------------------------------------

    def _signature(self, request, tables) -> tuple[str, str]:
        """(the signature the request's name resolves to in `tables`, its signature type)."""
        asked = required(request, "signature")
        kind = signature_type(request)
        self.q.check_any(tables, "signature_type", kind)
        return self.q.check_any(tables, "signature", asked, where=[("signature_type", "=", kind)]), kind

    def _maybe(self, check):
        """The name `check()` resolves to, or None when nothing resolves (NOT_FOUND)."""
        try:
            return check()
        except ServiceError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    def _all(self, context, table: str, message, where=(), size: int | None = None, **kw):
        rows, _ = self.q.page(context, _NoPage, table, message, where, size=size or self.settings.rows_max_limit,
                              **kw)
        return rows

    def _first(self, table: str, column: str, where, order_by: str):
        """`column` of the row of `table` matching `where` with the highest `order_by`; None if none."""
        rows = self._all(None, table, None, where, size=1, columns=[column], order_by=["-" + order_by])
        return rows.column(column)[0].as_py() if rows.num_rows else None

    def _count(self, table: str, where, function: str = "count", column: str = "") -> int:
        return self.q.aggregate(table, where, n=(function, column))["n"] or 0

    def _values(self, table: str, column: str, where) -> list:
        rows = self._all(None, table, None, where, group_by=[column], order_by=[column], format=ARROW)
        return rows.column(column).to_pylist()

    def _info(self, kind: str, signature: str | None) -> dict:
        """The gene_info record (hgnc_symbol, description) of a signature; {} when it has none."""
        if signature is None:
            return {}
        rows = self._all(None, INFO, None, _scope(kind, signature), size=1, columns=["hgnc_symbol", "description"])
        return {k: v for k, v in rows.to_pylist()[0].items() if v is not None} if rows.num_rows else {}

    # -- one signature -----------------------------------------------------------------

    @handle_errors
    def GetGeneOverview(self, request, context):
        signature, kind = self._signature(request, OVERVIEW_TABLES)
        scope = _scope(kind, signature)
        per_atlas = self._all(context, CELL_TYPES, None, scope, group_by=["atlas"],
                              aggregates={"n": ("count_distinct", "cell_type")}, format=ARROW)
        atlases = per_atlas.column("atlas").to_pylist()
        cell_types = dict(zip(atlases, per_atlas.column("n").to_pylist()))
        info = self._info(kind, signature)
        gene = info.get("hgnc_symbol", signature)
        counts = pb.GeneStats(
            n_atlases=len(atlases), n_cell_types=cell_types.get("CIMA", 0) + cell_types.get("Inflammation", 0),
            n_tissues=self._count(ORGANS, scope, "count_distinct", "organ"),
            n_diseases=self._count(DISEASES, scope, "count_distinct", "disease"),
            n_correlations=self._count(CORRELATIONS, [*scope, ("cell_type", "=", "All"),
                                                      ("category", "in", OVERVIEW_CORRELATIONS), SIGNIFICANT]),
            top_cell_type=self._first(CELL_TYPES, "cell_type", scope, "mean_activity"),
            top_tissue=self._first(ORGANS, "organ", scope, "mean_activity"),
            has_expression=self._count(EXPRESSION, [("gene", "=", gene)]) > 0)
        return pb.GetGeneOverviewResponse(query=request.signature, signature=signature, signature_type=kind,
                                          atlases=atlases, counts=counts, **info)

    @handle_errors
    def ListGeneCellTypeActivity(self, request, context):
        signature, kind = self._signature(request, (CELL_TYPES,))
        where = _scope(kind, signature) + self.q.filters(CELL_TYPES, request, ("atlas",))
        rows, token = self.q.page(context, request, CELL_TYPES, pb.GeneCellTypeActivity, where,
                                  order_by=["-mean_activity"])
        return pb.ListGeneCellTypeActivityResponse(query=request.signature, signature=signature, signature_type=kind,
                                                   activities=rows, next_page_token=token)

    @handle_errors
    def ListGeneTissueActivity(self, request, context):
        signature, kind = self._signature(request, (ORGANS,))
        rows, token = self.q.page(context, request, ORGANS, pb.GeneTissueActivity, _scope(kind, signature),
                                  order_by=["-mean_activity"])
        return pb.ListGeneTissueActivityResponse(query=request.signature, signature=signature, signature_type=kind,
                                                 tissues=rows, next_page_token=token)

    @handle_errors
    def ListGeneDiseaseActivity(self, request, context):
        signature, kind = self._signature(request, (DISEASES,))
        scope = _scope(kind, signature)
        where = [*scope, ("qvalue", "<=", request.max_qvalue)] if request.HasField("max_qvalue") else scope
        rows, token = self.q.page(context, request, DISEASES, pb.GeneDiseaseActivity, where,
                                  order_by=["-abs_activity_diff"])
        return pb.ListGeneDiseaseActivityResponse(
            query=request.signature, signature=signature, signature_type=kind, diseases=rows,
            disease_groups=self.q.distinct(DISEASES, "disease_group"), n_rows=self._count(DISEASES, scope),
            n_significant=self._count(DISEASES, [*scope, SIGNIFICANT]), next_page_token=token)

    @handle_errors
    def GetGeneCorrelations(self, request, context):
        signature, kind = self._signature(request, (CORRELATIONS,))
        lists, counts = {}, {}
        for category in CORRELATION_CATEGORIES:
            where = [*_scope(kind, signature), ("category", "=", category)]
            lists[category] = self._all(context, CORRELATIONS, pb.GeneCorrelation, where, order_by=["-abs_rho"])
            counts[f"n_significant_{category}"] = self._count(CORRELATIONS, [*where, SIGNIFICANT])
        return pb.GetGeneCorrelationsResponse(query=request.signature, signature=signature, signature_type=kind,
                                              **lists, **counts)

    @handle_errors
    def GetGeneCrossAtlas(self, request, context):
        signature, kind = self._signature(request, (CELL_TYPES, CONSERVED))
        scope = _scope(kind, signature)
        [conserved] = self._all(context, CONSERVED, pb.GeneConservation, scope, size=1) or [None]
        means = self._all(context, CELL_TYPES, pb.GeneAtlasMean, scope, group_by=["atlas"],
                          aggregates={"mean_activity": ("avg", "mean_activity"), "n_cell_types": ("count", "")})
        return pb.GetGeneCrossAtlasResponse(query=request.signature, signature=signature, signature_type=kind,
                                            conserved=conserved, cell_type_means=means)

    # -- lists ---------------------------------------------------------------------------

    @handle_errors
    def ListGeneSignatures(self, request, context):
        where = self.q.filters("cima_celltype", request, ("signature_type",))
        names, token = self.q.names_page(context, request, "cima_celltype", "signature", where)
        return pb.ListGeneSignaturesResponse(signatures=names, next_page_token=token)

    @handle_errors
    def ListGenes(self, request, context):
        where = [("gene_key", "starts_with", request.prefix.lower())] if request.prefix else []
        names, token = self.q.names_page(context, request, GENES, "gene", where)
        return pb.ListGenesResponse(genes=names, next_page_token=token)

    # -- one gene ------------------------------------------------------------------------

    @handle_errors
    def ListGeneExpression(self, request, context):
        gene = self.q.check(EXPRESSION, "gene", required(request, "gene"))
        everywhere = [("gene", "=", gene)]
        rows, token = self.q.page(context, request, EXPRESSION, pb.GeneExpression,
                                  everywhere + self.q.filters(EXPRESSION, request, ("atlas",)),
                                  order_by=["-mean_expression"])
        summary = self.q.aggregate(EXPRESSION, everywhere, n_cell_types=("count_distinct", "cell_type"),
                                   max_expression=("max", "mean_expression"))
        return pb.ListGeneExpressionResponse(
            query=request.gene, gene=gene, expression=rows, atlases=self._values(EXPRESSION, "atlas", everywhere),
            top_cell_type=self._first(EXPRESSION, "cell_type", everywhere, "mean_expression"),
            **{k: v for k, v in summary.items() if v is not None}, next_page_token=token)

    @handle_errors
    def ListGeneBoxplots(self, request, context):
        asked = required(request, "gene")
        data_type = request.data_type or "expression"
        if data_type not in BOXPLOT_TYPES:
            raise invalid(Reason.INVALID_REQUEST, f"data_type {data_type!r} is not valid; valid values: "
                          f"{', '.join(BOXPLOT_TYPES)}", "data_type", value=data_type)
        if data_type == "expression":
            table = BOXPLOTS
            name = self.q.check(BOXPLOTS, "gene", asked)
            where = [("gene", "=", name)]
        else:
            table = ACTIVITY
            self.q.check(ACTIVITY, "signature_type", data_type, column="signature_type")
            name = self.q.check(ACTIVITY, "signature", asked, where=[("signature_type", "=", data_type)])
            where = _scope(data_type, name)
        rows, token = self.q.page(context, request, table, pb.GeneBoxplot,
                                  where + self.q.filters(table, request, ("atlas",)), order_by=["-median"])
        return pb.ListGeneBoxplotsResponse(query=asked, gene=name, data_type=data_type, boxplots=rows,
                                           next_page_token=token)

    def _names(self, asked: str) -> tuple[str | None, str | None, str | None]:
        """(gene symbol, CytoSig signature, SecAct signature) a name resolves to; None where nothing does."""
        gene = self._maybe(lambda: self.q.check(GENES, "gene", asked))
        signatures = [self._maybe(lambda kind=kind: self.q.check(CELL_TYPES, "signature", asked,
                                                                 where=[("signature_type", "=", kind)]))
                      for kind in ("CytoSig", "SecAct")]
        return gene, *signatures

    @handle_errors
    def GetGenePage(self, request, context):
        asked = required(request, "gene")
        top_n(request)  # a bad top_n is refused before any lookup
        gene, cytosig, secact = self._names(asked)
        if not (gene or cytosig or secact):
            self.q.check(GENES, "gene", asked)  # raises NOT_FOUND naming the close genes
        cytosig_info, secact_info = self._info("CytoSig", cytosig), self._info("SecAct", secact)
        answer = pb.GetGenePageResponse(query=asked, is_cytosig_only=bool(cytosig and not secact))
        described = {**secact_info, **cytosig_info}  # CytoSig's description wins, as on the real page
        if "description" in described:
            answer.description = described["description"]
        hgnc = described.get("hgnc_symbol") or gene
        if hgnc:
            answer.hgnc_symbol = hgnc
        atlases = set()
        if gene:
            answer.gene = gene
            if gene != asked:
                answer.redirect_to = gene
            where = [("gene", "=", gene)]
            answer.expression.extend(self.q.top(context, request, EXPRESSION, pb.GeneExpression, where,
                                                "mean_expression"))
            answer.n_expression = self._count(EXPRESSION, where)
            answer.has_expression = answer.n_expression > 0
            answer.expression_boxplot.extend(self.q.top(context, request, BOXPLOTS, pb.GeneBoxplot, where, "median"))
            atlases.update(self._values(EXPRESSION, "atlas", where))
        for kind, signature, prefix in (("CytoSig", cytosig, "cytosig"), ("SecAct", secact, "secact")):
            if signature is None:
                continue
            setattr(answer, f"{prefix}_name", signature)
            scope = _scope(kind, signature)
            getattr(answer, f"{prefix}_activity").extend(
                self.q.top(context, request, CELL_TYPES, pb.GeneCellTypeActivity, scope, "mean_activity"))
            setattr(answer, f"n_{prefix}_activity", self._count(CELL_TYPES, scope))
            setattr(answer, f"has_{prefix}", getattr(answer, f"n_{prefix}_activity") > 0)
            getattr(answer, f"{prefix}_boxplot").extend(
                self.q.top(context, request, ACTIVITY, pb.GeneBoxplot, scope, "median"))
            atlases.update(self._values(CELL_TYPES, "atlas", scope))
        answer.atlases.extend(sorted(atlases))
        return answer

    @handle_errors
    def CheckGene(self, request, context):
        asked = required(request, "gene")
        gene, _, _ = self._names(asked)
        # As the real check: CytoSig / SecAct activity in the CIMA or Inflammation cell-type tables.
        found = {kind: self._maybe(lambda kind=kind: self.q.check(
            CELL_TYPES, "signature", asked, where=[("signature_type", "=", kind),
                                                   ("atlas", "in", ["CIMA", "Inflammation"])]))
                 for kind in ("CytoSig", "SecAct")}
        info = {**self._info("SecAct", found["SecAct"]), **self._info("CytoSig", found["CytoSig"])}
        has_expression = bool(gene) and self._count(EXPRESSION, [("gene", "=", gene)]) > 0
        answer = pb.CheckGeneResponse(gene=asked, has_expression=has_expression,
                                      has_cytosig=found["CytoSig"] is not None, has_secact=found["SecAct"] is not None)
        answer.exists = answer.has_expression or answer.has_cytosig or answer.has_secact
        hgnc = info.get("hgnc_symbol") or gene
        if hgnc:
            answer.hgnc_symbol = hgnc
        if "description" in info:
            answer.description = info["description"]
        return answer

    @handle_errors
    def ResolveGeneName(self, request, context):
        asked = required(request, "query")
        resolutions = []
        for kind in self.q.distinct(CELL_TYPES, "signature_type"):
            found = self._maybe(lambda kind=kind: self.q.check(CELL_TYPES, "signature", asked,
                                                               where=[("signature_type", "=", kind)]))
            if found is not None:
                rule = "exact" if found == asked else "case" if found.lower() == asked.strip().lower() else "alias"
                resolutions.append(pb.GeneNameResolution(signature_type=kind, signature=found, rule=rule))
        by_type = {r.signature_type: r.signature for r in resolutions}
        info = {**self._info("SecAct", by_type.get("SecAct")), **self._info("CytoSig", by_type.get("CytoSig"))}
        gene = self._maybe(lambda: self.q.check(GENES, "gene", asked))
        aliases = self._all(context, ALIASES, pb.GeneNameAlias, [("alias_key", "=", asked.strip().lower())])
        answer = pb.ResolveGeneNameResponse(query=asked, signatures=resolutions, aliases=aliases)
        if gene:
            answer.gene = gene
        if "description" in info:
            answer.description = info["description"]
        return answer


SERVICE = TypedService.of(pb, pb_grpc, "GeneService", GeneServicer)
