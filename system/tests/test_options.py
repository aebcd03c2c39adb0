"""Command-line value types: a value a user can get wrong is refused in one line."""

import argparse

import pytest

from system.options import file_in_existing_directory


def test_a_file_in_an_existing_directory_is_its_path(tmp_path):
    assert file_in_existing_directory(str(tmp_path / "results.json")) == tmp_path / "results.json"


def test_a_file_in_a_missing_directory_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a directory"):
        file_in_existing_directory(str(tmp_path / "missing" / "results.json"))
