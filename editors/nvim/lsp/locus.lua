--- Locus language server configuration for Neovim >= 0.11 (`vim.lsp.config` / `vim.lsp.enable`).
---
---   vim.lsp.enable('locus')
---   -- optional overrides:
---   vim.lsp.config('locus', { cmd = { '/path/to/locus', 'lsp' }, settings = { locus = { maxResults = 20 } } })
---
--- Attaches to Python and Rust buffers and to `*.issue.md` (other Markdown files are left alone).

--- Workspace root: the repository root first (Locus ranks the whole repository), else a project file.
local root_markers = { { '.git', '.hg', '.jj' }, { 'Cargo.toml', 'pyproject.toml', 'setup.py', 'setup.cfg' } }

---@type vim.lsp.Config
return {
  cmd = { require('locus').server_path(), 'lsp' },
  filetypes = { 'python', 'rust', 'markdown' },
  root_markers = root_markers,
  ---@param bufnr integer
  ---@param on_dir fun(root: string)
  root_dir = function(bufnr, on_dir)
    local name = vim.api.nvim_buf_get_name(bufnr)
    if vim.bo[bufnr].filetype == 'markdown' and not name:match('%.issue%.md$') then
      return -- an ordinary Markdown file: do not attach
    end
    on_dir(vim.fs.root(bufnr, root_markers) or vim.fs.dirname(name) or vim.fn.getcwd())
  end,
  -- Sent as initializationOptions and (Neovim does this when non-empty) workspace/didChangeConfiguration.
  -- Keys: maxResults, granularity ("function"|"file"), modelDir, runtimePath, budgetMs, exclude.
  init_options = {},
  settings = { locus = {} },
}
