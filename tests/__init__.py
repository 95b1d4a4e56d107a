"""dropout-lab's test suite: one folder per part of the package (tests/backends/ for
dropout_lab/backends/, tests/training/ for trial.py and what a trial uses, ...).

Every folder is a package (an ``__init__.py``), so pytest's default import mode (prepend)
names each test module by its full dotted path (``tests.data.test_data_idx``): two folders
may hold test files of the same name, and shared code is imported by its full name from
``tests.helpers``. Fixtures stay in conftest.py files.
"""
