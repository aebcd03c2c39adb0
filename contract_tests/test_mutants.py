"""The contract suite must fail against each mutant, a deliberately broken handler set
(``mutants/``): a test per mutant, each a run of the suite in a subprocess on a local
stack running the mutant, the tests known to catch it first (``mutation_check.py``)."""

import pytest

from contract_tests.mutants import MUTANT_NAMES
from contract_tests.mutation_check import run_suite_against

# A suite run per mutant, a minute and more: collected first (see conftest.py).
pytestmark = pytest.mark.long_file


@pytest.mark.parametrize("mutant", MUTANT_NAMES)
def test_the_contract_suite_fails_against_the_mutant(mutant, tmp_path, request):
    if request.config.getoption("--stack-file"):
        pytest.skip("checks the suite on local stacks running broken handlers, not the "
                    "--stack-file target")
    run = run_suite_against(mutant, tmp_path)
    assert run.caught, run.summary()
