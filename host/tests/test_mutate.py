"""The mutation check's own logic: a stale mutant table fails loudly, a mutant
changes exactly its line, and `--safety SR-n` selects the tests of one SR."""
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
sys.modules["mutate"] = mutate  # dataclasses look their module up
_spec.loader.exec_module(mutate)

SOURCE = textwrap.dedent("""\
    class A:
        def f(self):
            x = 1
            return x

        def g(self):
            x = 1
            return x


    def h():
        return 2
    """)


def mutant(line, scope="", to="pass"):
    return mutate.Mutant("m", ["SR-1"], "src.py", scope, line, to, "why")


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "src.py").write_text(SOURCE)
    return tmp_path


def test_a_line_found_twice_needs_a_scope(tree):
    with pytest.raises(mutate.TableError, match="found 2 times"):
        mutate.locate(mutant("x = 1"), tree)
    assert mutate.locate(mutant("x = 1", "A.g"), tree) == 6


def test_a_moved_or_changed_line_is_stale(tree):
    with pytest.raises(mutate.TableError, match="found 0 times"):
        mutate.locate(mutant("return 3"), tree)
    with pytest.raises(mutate.TableError, match="found 0 times"):
        mutate.locate(mutant("return 2", "A"), tree)  # h() is outside class A
    with pytest.raises(mutate.TableError, match="definition 'k' found 0 times"):
        mutate.locate(mutant("return 2", "k"), tree)


def test_a_mutant_replaces_only_its_line_and_keeps_the_indentation(tree):
    m = mutant("return x", "A.g", to="return -x")
    m.lineno = mutate.locate(m, tree) + 1
    mutate.apply(m, tree)
    lines = (tree / "src.py").read_text().splitlines()
    assert lines[7] == "        return -x"
    assert [i for i, (a, b) in enumerate(zip(SOURCE.splitlines(), lines)) if a != b] == [7]


def test_the_table_is_checked_as_it_is_read(tmp_path):
    table = tmp_path / "m.toml"
    table.write_text('[[mutant]]\nid = "a"\nsr = "SR-16"\nfile = "f"\nline = "x"\nto = "y"\nwhy = "w"\n')
    with pytest.raises(mutate.TableError, match="SR-1..SR-15"):
        mutate.load_table(table)
    table.write_text('[[mutant]]\nid = "a"\nsr = "SR-1"\nfile = "f"\nline = "x"\nto = "x"\nwhy = "w"\n')
    with pytest.raises(mutate.TableError, match="is the original"):
        mutate.load_table(table)


def test_safety_option_selects_the_tests_of_one_requirement(tmp_path):
    (tmp_path / "test_sel.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.mark.safety("SR-3")
        def test_three(): pass

        @pytest.mark.safety("SR-2")
        def test_two(): pass

        def test_unmarked(): pass
        """))
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--safety", "SR-3",
                          "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert "test_three" in out.stdout
    assert "test_two" not in out.stdout and "test_unmarked" not in out.stdout
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--safety", "SR-99",
                          "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and "--safety 'SR-99' is not SR-1..SR-15" in out.stdout + out.stderr


def test_named_tests_are_checked_as_the_table_is_read(tmp_path, tree):
    table = tmp_path / "m.toml"
    head = '[[mutant]]\nid = "a"\nsr = "SR-1"\nfile = "src.py"\nline = "return 2"\nto = "return 3"\nwhy = "w"\n'
    table.write_text(head + 'tests = "test_x.py"\n')
    with pytest.raises(mutate.TableError, match="tests must be a list"):
        mutate.load_table(table)
    table.write_text(head + 'tests = ["test_x.py::test_y"]\n')
    (m,) = mutate.load_table(table)
    assert m.tests == ("test_x.py::test_y",)
    with pytest.raises(mutate.TableError, match="no test file test_x.py"):
        mutate.locate(m, tree)
    (tree / "test_x.py").write_text("def test_y(): pass\n")
    assert mutate.locate(m, tree) == 11


def test_a_real_boards_code_runs_the_board_logic_tests():
    def on(file):
        return mutate.board_tests(mutate.Mutant("m", ["SR-3"], file, "", "x", "y", "why"))

    for file in ("boards/shared/mcu.py", "boards/rp2/board.py", "boards/stm32/board.py", "boards/esp32/board.py"):
        assert on(file) == mutate.BOARD_TESTS, file
    assert on("boards/unix/siminputs.py") == [] and on("firmware/controller.py") == []
    node = mutate.BOARD_TESTS[0].split("::")
    assert (ROOT / node[0]).is_file() and f"def {node[1]}(" in (ROOT / node[0]).read_text()
