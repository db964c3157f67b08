"""Where the project lives: the one place to change when you fork it.

The first cell of every notebook (installs mmlab in Colab) is generated from this URL by
`python tools/sync_notebooks.py`; the README's Colab links use the same owner/name.
"""

REPO_URL = "https://github.com/mmlab-workbook/mmlab"
BRANCH = "main"
