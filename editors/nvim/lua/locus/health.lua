--- `:checkhealth locus`: Neovim's version, the server binary, and what `locus doctor` found
--- (ONNX Runtime, the encoder, the localization models), with the fix for anything missing.
local M = {}

function M.check()
  local health = vim.health
  health.start('locus')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)')
  end

  local bin = require('locus').server_path()
  local exe = vim.fn.exepath(bin)
  if exe == '' then
    health.error(
      ('the server `%s` is not executable or not on PATH'):format(bin),
      { 'install the release bundle and add its bin/ to PATH, or set vim.g.locus_server_path' }
    )
    return
  end
  health.ok('server: ' .. exe)

  local res = vim.system({ exe, 'doctor' }, { text = true }):wait(30000)
  for line in vim.gsplit(vim.trim(res.stdout or ''), '\n', { plain = true }) do
    if line:match('^ok ') then
      health.ok(vim.trim(line:sub(4)))
    elseif line:match('^MISSING ') then
      health.error(vim.trim(line:sub(9)))
    elseif line ~= '' then
      health.info(line)
    end
  end
  if res.code ~= 0 then
    health.error(('`%s doctor` failed (exit %d): %s'):format(exe, res.code, vim.trim(res.stderr or '')))
  end

  local clients = vim.lsp.get_clients({ name = 'locus' })
  if #clients > 0 then
    health.ok(('%d locus client(s) attached'):format(#clients))
  else
    health.info("no locus client running (enable it with `vim.lsp.enable('locus')`)")
  end
end

return M
