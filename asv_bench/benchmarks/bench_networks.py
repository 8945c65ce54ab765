"""Tensor networks made by the einsum_benchmark package's generators (the ``bench`` extra).

Each engine runs with its own path, planned once in ``setup``: contract (its cached plan),
opt_einsum (an expression), sesum (its path, then ``sesum.sesum``) and cotengra (an expression);
``time_contract_shared_path`` runs contract on cotengra's path, for the execution alone. The
``track_*`` methods record the path quality (FLOPs of contract's path over cotengra's) and the
path search time of ``optimize='auto'``. Without einsum_benchmark (or a peer) the methods raise
``NotImplementedError`` in ``setup``, which asv reports as skipped.
"""

import importlib.util
import time

import opt_einsum

import contract
import contract.parser
import contract.planner
from contract import paths

try:
    from contract.bench.cases import get_case
except ImportError:  # commits from before the contract.bench subpackage
    from contract.bench_cases import get_case
from contract.parser import parse, split_operands

__all__ = ["Networks", "Planning"]


def _have(module):
    return importlib.util.find_spec(module) is not None


class Networks:
    """A few einsum_benchmark networks, float64 and float32."""

    params = [["eb_lattice", "eb_tree", "eb_mps", "eb_random"], ["float64", "float32"]]
    param_names = ["case", "dtype"]
    timeout = 300

    def setup(self, case, dtype):
        if not _have("einsum_benchmark"):
            raise NotImplementedError("einsum_benchmark is not installed (pip install .[bench])")
        self.case = get_case(case)
        self.operands = self.case.make_operands(dtype)
        self.args = self.case.einsum_args(self.operands)
        shapes = self.case.shapes
        contract.einsum(*self.args)  # plan, compile (or load from the disk cache)
        self.opt_einsum = opt_einsum.contract_expression(self.case.subscripts, *shapes)
        self.sesum_path = None
        if _have("sesum"):
            import sesum

            self.sesum_path = sesum.compute_path(self.case.subscripts, *shapes, minimize="flops")[0]
        self.cotengra = self.cotengra_path = None
        if _have("cotengra"):
            import cotengra

            self.cotengra = cotengra.einsum_expression(self.case.subscripts, *shapes)
            self.cotengra_path = tuple(
                tuple(p) for p in cotengra.einsum_tree(self.case.subscripts, *shapes).get_path()
            )
            contract.einsum(*self.args, optimize=self.cotengra_path)

    def time_contract(self, case, dtype):
        contract.einsum(*self.args)

    def time_opt_einsum(self, case, dtype):
        self.opt_einsum(*self.operands)

    def time_sesum(self, case, dtype):
        if self.sesum_path is None:
            raise NotImplementedError("sesum is not installed")
        import sesum

        sesum.sesum(self.case.subscripts, *self.operands, path=self.sesum_path)

    def time_cotengra(self, case, dtype):
        if self.cotengra is None:
            raise NotImplementedError("cotengra is not installed")
        self.cotengra(*self.operands)

    def time_contract_shared_path(self, case, dtype):
        if self.cotengra_path is None:
            raise NotImplementedError("cotengra is not installed")
        contract.einsum(*self.args, optimize=self.cotengra_path)

    def track_path_flops_vs_cotengra(self, case, dtype):
        if self.cotengra_path is None:
            raise NotImplementedError("cotengra is not installed")
        mine, _ = contract.contract_path(*self.args)
        flops = [
            opt_einsum.contract_path(self.case.subscripts, *self.case.shapes, shapes=True,
                                     optimize=list(p))[1].opt_cost
            for p in (mine, self.cotengra_path)
        ]
        return float(flops[0] / flops[1])

    track_path_flops_vs_cotengra.unit = "ratio"

    def track_auto_search_seconds(self, case, dtype):
        sub, ops = split_operands(tuple(self.args))
        eq = parse(sub, tuple(op.shape for op in ops))
        inputs = [tuple(dict.fromkeys(t)) for t in eq.terms]
        start = time.perf_counter()
        paths.find_path(inputs, eq.output, eq.size_dict, "auto")
        return time.perf_counter() - start

    track_auto_search_seconds.unit = "seconds"


class Planning:
    """Planning alone (caches cleared): contract_path against opt_einsum.contract_path on small
    equations, where 'auto' is opt_einsum's own 'auto' search."""

    params = [[
        "ij,jk->ik",
        "ij,jk,kl->il",
        "abc,cd,dea->be",
        "awc,wvst,bvd,ctd->asb",
        "ab,bc,cd,de,ea->",
        "ab,ac,ad,bc,bd,cd->",
    ]]
    param_names = ["equation"]

    def setup(self, equation):
        size = dict(zip("abcdestvwijkl", (7, 5, 6, 4, 3, 2, 2, 5, 3, 8, 6, 9, 4)))
        terms = equation.split("->")[0].split(",")
        self.shapes = [tuple(size[c] for c in t) for t in terms]

    def time_contract_path(self, equation):
        contract.parser._parse_remembered.cache_clear()
        contract.planner._make_plan_cached.cache_clear()
        contract.contract_path(equation, *self.shapes, shapes=True)

    def time_opt_einsum_contract_path(self, equation):
        opt_einsum.contract_path(equation, *self.shapes, shapes=True)
