"""Tests of the benchmark table, the compare command and the asv benchmark modules."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import contract
from contract.bench import cases as bench_cases
from contract.bench import compare
from contract.bench.cases import ALL_DTYPES, CASES, CATEGORIES, check_result, get_case, select

ASV_DIR = Path(__file__).resolve().parents[1] / "asv_bench"
PAIRS = [(case, dtype) for case in CASES for dtype in case.dtypes]


def _pair_id(pair):
    return f"{pair[0].name}-{pair[1]}"


# ------------------------------------------------------------------------------ the table
def test_table_is_consistent():
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.category for c in CASES} == set(CATEGORIES)
    for case in CASES:
        assert set(case.dtypes) <= set(ALL_DTYPES)
        assert case.flops() > 0
        assert case.bytes_moved() > 0
        assert case.is_matmul == (case.matmul is not None)
    assert any(c.quick for c in CASES)
    # every category of the issue is covered, with every dtype somewhere
    assert {d for c in CASES for d in c.dtypes} == set(ALL_DTYPES)


def test_operands_are_deterministic_and_shaped():
    for case in CASES:
        for dtype in case.dtypes:
            first = case.make_operands(dtype)
            second = case.make_operands(dtype)
            assert [op.shape for op in first] == list(case.shapes)
            assert all(op.dtype == np.dtype(dtype) for op in first)
            for a, b in zip(first, second, strict=True):
                np.testing.assert_array_equal(a, b)
            if np.dtype(dtype).kind == "i":
                assert all(np.abs(op).max() <= 3 for op in first)
    with pytest.raises(ValueError, match="does not run for dtype"):
        get_case("trace").make_operands("complex128")


def test_layouts():
    assert get_case("gemm_fortran").make_operands("float64")[0].flags.f_contiguous
    strided = get_case("gemm_strided").make_operands("float64")[0]
    assert not strided.flags.c_contiguous and strided.strides[-1] == 16


def test_flop_counts():
    assert get_case("gemm_square").flops("float64") == 2 * 256**3
    assert get_case("gemm_square").flops("complex128") == 4 * 2 * 256**3
    # a trace reads only the diagonal
    assert get_case("trace").bytes_moved("float64") == 8 * (2000 + 1)
    dmrg = get_case("dmrg_small")
    assert dmrg.numpy_cost(optimize=True) == dmrg.naive_flops()  # numpy's memory-cap pathology
    assert dmrg.flops() < dmrg.naive_flops() / 100


def test_select():
    assert [(c.name, d) for c, d in select("^trace$")] == [("trace", "float64"), ("trace", "int64")]
    quick = select(quick=True)
    assert quick and all(c.quick for c, _ in quick)
    assert len({c.name for c, _ in quick}) == len(quick)  # one dtype each
    assert all(d == "int64" for _, d in select(dtypes=["int64"]))
    assert select("no-such-case") == []


def test_check_result():
    ref = np.array([1.0, 2.0, 3.0])
    assert check_result(ref + 1e-12, ref) is None
    assert "max abs error" in check_result(ref + 1e-3, ref)
    assert "shape" in check_result(ref[:2], ref)
    assert "dtype" in check_result(ref.astype(np.float32), ref)
    assert check_result(np.array([1, 2]), np.array([1, 2])) is None
    assert check_result(np.array([1, 3]), np.array([1, 2])) is not None


@pytest.mark.parametrize("pair", [p for p in PAIRS if p[0].is_matmul], ids=_pair_id)
def test_matmul_baseline_matches(pair):
    case, dtype = pair
    operands = case.make_operands(dtype)
    assert check_result(case.matmul(*operands), case.reference(operands)) is None


# ------------------------------------------------------------------------------ correctness
@pytest.mark.parametrize(
    "pair",
    [pytest.param(p, marks=pytest.mark.slow) if p[0].heavy else p for p in PAIRS],
    ids=_pair_id,
)
def test_contract_matches_numpy_on_bench_case(pair):
    case, dtype = pair
    operands = case.make_operands(dtype)
    expected = case.reference(operands)
    problem = check_result(contract.einsum(case.subscripts, *operands), expected)
    assert problem is None, f"{case.name}/{dtype} {case.subscripts}: {problem}"


# ------------------------------------------------------------------------------ compare command
def test_compare_smoke(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = compare.main(["--quick", "--filter", "^tiny_gemm$", "--repeat", "3", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr()
    assert "tiny_gemm" in text.out and "geomean" in text.out
    assert "1/3 tiny_gemm" in text.err  # the progress bar
    data = json.loads(out.read_text())
    assert data["machine"]["numpy"] == np.__version__
    assert "numba" in data["machine"] and data["machine"]["cpu_count"]
    assert isinstance(data["machine"]["blas"], list)
    assert data["peaks"]["gemm_float64"] > 0 and data["peaks"]["bandwidth"] > 0
    assert data["settings"]["repeat"] == 3
    (record,) = data["results"]
    assert (record["case"], record["dtype"]) == ("tiny_gemm", "float64")
    engines = record["engines"]
    # sesum and cotengra are baselines when installed (the bench extra)
    peers = {key for key in ("sesum", "cotengra") if compare._available(key)}
    assert set(engines) == {"contract", "numpy", "numpy_optimize", "opt_einsum", "matmul"} | peers
    for timing in engines.values():
        assert timing["status"] == "ok"
        assert len(timing["samples"]) == 3 and timing["median"] > 0
        assert timing["number"] >= 1
    assert engines["matmul"]["number"] > 10  # adaptive: a 4x4 matmul is far below 2 ms
    assert record["speedup"]["numpy"] == pytest.approx(
        engines["numpy"]["median"] / engines["contract"]["median"]
    )
    assert record["roofline"]["flops"] == get_case("tiny_gemm").flops("float64")
    assert set(data["summary"]["baselines"]) == {
        "numpy", "numpy_optimize", "opt_einsum", "matmul"
    } | peers
    assert data["summary"]["wrong"] == [] and data["summary"]["errors"] == []


def test_compare_reports_wrong_results(tmp_path, capsys, monkeypatch):
    real = contract.einsum
    monkeypatch.setattr(contract, "einsum", lambda *args, **kw: real(*args, **kw) + 1)
    out = tmp_path / "result.json"
    code = compare.main(
        [
            "--filter",
            "^trace$",
            "--dtype",
            "int64",
            "--repeat",
            "1",
            "--no-peak",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 1
    text = capsys.readouterr().out
    assert re.search(r"^trace\s+int64\s+WRONG", text, re.MULTILINE)
    data = json.loads(out.read_text())
    mine = data["results"][0]["engines"]["contract"]
    assert mine["status"] == "wrong" and "samples" not in mine
    assert data["summary"]["wrong"] == ["trace/int64"]


def test_compare_reports_errors(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(contract, "einsum", broken)
    code = compare.main(["--filter", "^tiny_trace$", "--repeat", "1", "--no-peak", "--no-progress"])
    assert code == 1
    assert "RuntimeError: boom" in capsys.readouterr().out


def test_compare_usage_errors(capsys, monkeypatch):
    assert compare.main(["--filter", "no-such-case"]) == 2
    assert compare.main(["--dtype", "float128"]) == 2
    assert compare.main(["--filter", "("]) == 2
    assert compare.main(["--no-such-option"]) == 2
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert compare.main(["--quick", "--plot", "x.png"]) == 2
    assert "needs matplotlib" in capsys.readouterr().err


def test_compare_list(capsys):
    assert compare.main(["--list", "--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(select(quick=True))


def test_compare_skips_hopeless_baselines(capsys):
    # numpy's naive loop on the big DMRG network is predicted to take far over the budget
    code = compare.main(
        [
            "--filter",
            "^dmrg$",
            "--dtype",
            "float64",
            "--repeat",
            "1",
            "--no-peak",
            "--no-progress",
            "--min-sample",
            "0",
        ]
    )
    assert code == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("dmrg "))
    assert row.count("\u2014") >= 4  # np and np(opt) times and ratios, matmul


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "speedups.png"
    code = compare.main(
        [
            "--filter",
            "^tiny_(gemm|trace)$",
            "--dtype",
            "float64",
            "--repeat",
            "1",
            "--no-peak",
            "--no-progress",
            "--plot",
            str(out),
        ]
    )
    assert code == 0 and out.stat().st_size > 1000


# ------------------------------------------------------------------------------ asv benchmarks
@pytest.fixture(scope="module")
def asv_modules():
    sys.path.insert(0, str(ASV_DIR))
    try:
        yield {
            name: importlib.import_module(f"benchmarks.{name}")
            for name in ("bench_einsum", "bench_startup")
        }
    finally:
        sys.path.remove(str(ASV_DIR))


def test_asv_conf():
    text = (ASV_DIR / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))
    assert conf["repo"] == ".."
    assert conf["environment_type"] == "virtualenv"
    assert conf["benchmark_dir"] == "benchmarks"
    assert set(conf["matrix"]["req"]) >= {"numpy", "numba", "opt_einsum", "threadpoolctl"}


def test_asv_params_match_bench_cases(asv_modules):
    mod = asv_modules["bench_einsum"]
    classes = [getattr(mod, name) for name in mod.__all__]
    seen = []
    for cls in classes:
        names, dtypes = cls.params
        assert cls.param_names == ["case", "dtype"]
        assert dtypes == list(ALL_DTYPES)
        assert len({get_case(n).category for n in names}) == 1
        seen += names
        for method in (
            "time_contract",
            "time_contract_expression",
            "time_numpy_einsum_nooptimize",
            "time_numpy_einsum_optimize",
            "time_opt_einsum",
            "time_numpy_matmul",
        ):
            assert callable(getattr(cls, method))
    assert sorted(seen) == sorted(c.name for c in CASES)  # each case in exactly one class

    unsupported = {(c.name, d) for c in CASES for d in ALL_DTYPES if d not in c.dtypes}
    base = mod._EinsumBench
    assert unsupported <= set(base.time_contract.skip_params)
    matmul_skips = set(base.time_numpy_matmul.skip_params)
    for case in CASES:
        for dtype in case.dtypes:
            assert ((case.name, dtype) in matmul_skips) == (not case.is_matmul)
    assert ("dmrg", "float64") in base.time_numpy_einsum_optimize.skip_params
    assert ("dmrg_small", "float64") not in base.time_numpy_einsum_optimize.skip_params


def test_asv_setup_and_skips(asv_modules):
    mod = asv_modules["bench_einsum"]
    bench = mod.Tiny()
    bench.setup("tiny_gemm", "float64")
    bench.time_contract("tiny_gemm", "float64")
    bench.time_contract_expression("tiny_gemm", "float64")
    bench.time_numpy_matmul("tiny_gemm", "float64")
    with pytest.raises(NotImplementedError):
        bench.setup("tiny_trace", "int64")
    bench.setup("tiny_trace", "float64")
    with pytest.raises(NotImplementedError):
        bench.time_numpy_matmul("tiny_trace", "float64")


def test_asv_startup_module(asv_modules):
    mod = asv_modules["bench_startup"]
    for name in mod.FIRST_CALL_CASES:
        get_case(name)
    assert set(mod.FIRST_CALL_DTYPES) <= set(ALL_DTYPES)
    code, setup = mod.FirstCall().timeraw_first_call_cold("trace", "float64")
    assert "NUMBA_CACHE_DIR" in setup and "contract.einsum" in code
    compile(setup, "<setup>", "exec")
    compile(code, "<code>", "exec")
    dispatchers = mod.kernel_dispatchers()
    assert all(hasattr(d, "signatures") for d in dispatchers.values())


@pytest.mark.parametrize("module", [bench_cases, compare], ids=lambda m: m.__name__)
def test_doctests(module):
    import doctest

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------------------ networks
@pytest.mark.skipif(not bench_cases.einsum_benchmark_available(), reason="needs einsum_benchmark")
@pytest.mark.parametrize("name", ["eb_language_sliding", "eb_random"])
def test_network_cases_match_the_reference(name):
    case = bench_cases.network_case(name)
    assert case.category == bench_cases.NETWORK_CATEGORY and case.n_operands >= 16
    assert [(c.name, d) for c, d in select(f"^{name}$", dtypes=["float64"])] == [
        (name, "float64")
    ]
    operands = case.make_operands("float64")
    args = case.einsum_args(operands)
    if not case.numpy_compatible:  # more than 52 labels: the sublist form with int labels
        assert isinstance(args[1], list) and max(max(a) for a in args[1::2]) >= 52
    assert check_result(contract.einsum(*args), case.reference(operands)) is None
    paths = compare._case_paths(case)
    assert paths["shared"] in paths["engines"] and "contract" in paths["engines"]
    assert paths["engines"]["contract"]["optimizer"].startswith("auto")
