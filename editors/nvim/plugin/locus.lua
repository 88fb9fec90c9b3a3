-- Locus: `:LocateIssue` and `:LocateIssueCancel` (see editors/nvim/README.md).
if vim.g.loaded_locus then
  return
end
vim.g.loaded_locus = true

vim.api.nvim_create_user_command('LocateIssue', function(opts)
  local locus = require('locus')
  if opts.args ~= '' then
    locus.locate(opts.args)
  elseif opts.range > 0 then
    local lines = vim.api.nvim_buf_get_lines(0, opts.line1 - 1, opts.line2, false)
    locus.locate(table.concat(lines, '\n'))
  else
    vim.ui.input({ prompt = 'Locate issue: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        locus.locate(input)
      end
    end)
  end
end, {
  nargs = '*',
  range = true,
  desc = 'Locus: rank the code locations for an issue (args, range of lines, or a prompt) into the quickfix list',
})

vim.api.nvim_create_user_command('LocateIssueCancel', function()
  require('locus').cancel()
end, { desc = 'Locus: cancel the running :LocateIssue' })

vim.api.nvim_create_autocmd('LspProgress', {
  group = vim.api.nvim_create_augroup('locus_progress', { clear = true }),
  callback = function(ev)
    require('locus')._on_progress(ev)
  end,
})
