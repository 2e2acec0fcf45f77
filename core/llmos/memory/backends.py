"""The built-in memory drivers, registered like any pack's: ``sqlite``, ``markdown`` and
``postgres`` (psycopg is imported only when ``postgres`` is chosen)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import llmos

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.markdown import MarkdownMemory
    from llmos.memory.postgres import PostgresMemory
    from llmos.memory.sqlite import SqliteMemory

MARKDOWN_DIR = "memory"


def sqlite_memory(kernel: Kernel) -> SqliteMemory:
    from llmos.memory.sqlite import SqliteMemory

    return SqliteMemory(kernel.workspace.memory_database_path)


def markdown_memory(kernel: Kernel) -> MarkdownMemory:
    from llmos.memory.markdown import MarkdownMemory

    return MarkdownMemory(kernel.workspace.root / MARKDOWN_DIR)


def postgres_memory(kernel: Kernel) -> PostgresMemory:
    from llmos.memory.postgres import open_configured

    project = getattr(kernel.workspace, "project", "")  # a project's memory is its own
    return open_configured(kernel.config.memory.dsn, kernel.config.origin("memory", "dsn"),
                           schema=f"project_{project}" if project else None,
                           root=str(kernel.workspace.root))


@llmos.hookimpl
def llmos_register_memory_backends(register: Any) -> None:
    register(
        "sqlite",
        sqlite_memory,
        description="SQLite tables in the workspace database (.llmos/llmos.db) with "
        "full-text search. The default.",
    )
    register(
        "markdown",
        markdown_memory,
        description=f"One Markdown file with YAML front matter per trace and fact, under "
        f"<workspace>/{MARKDOWN_DIR}/: readable and git-friendly.",
    )
    register(
        "postgres",
        postgres_memory,
        description="Tables in a PostgreSQL database (memory.dsn or LLMOS_DATABASE_URL) "
        "shared by every worker and machine; pip install 'llmos[postgres]'.",
    )
