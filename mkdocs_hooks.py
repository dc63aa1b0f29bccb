"""MkDocs hooks of the hyco site (mkdocs.yml `hooks:`): pages generated from the code when the site is built."""

from mkdocs.structure.files import File


def on_files(files, config):
    """Add the configuration reference, written afresh from the schema's declarations (hyco.config.reference)."""
    from hyco.config.reference import reference_markdown

    files.append(File.generated(config, "reference/configuration.md", content=reference_markdown()))
    return files
