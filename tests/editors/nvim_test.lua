-- Neovim end-to-end test of editors/nvim against the real server (run by tests/editors/nvim.sh).
-- Env: LOCUS_BIN, LOCUS_PLUGIN_DIR, LOCUS_WS (a copy of the example with a .git marker),
--      LOCUS_ISSUE (issue file inside LOCUS_WS), LOCUS_EXPECT_TOP, LOCUS_EXPECT_TOP_FILE.
local env = vim.env
local passed, failed = 0, 0
local INDEX_TIMEOUT = tonumber(env.LOCUS_INDEX_TIMEOUT_MS or '') or 120000

local function out(s)
  io.stdout:write(s .. '\n')
  io.stdout:flush()
end

local function check(cond, what, detail)
  if cond then
    passed = passed + 1
    out('ok - ' .. what)
  else
    failed = failed + 1
    out('not ok - ' .. what .. (detail and ('\n  # ' .. tostring(detail):gsub('\n', '\n  # ')) or ''))
  end
  return cond
end

local function wait(ms, pred, what)
  local ok = vim.wait(ms, pred, 20)
  if not ok then
    error('timed out after ' .. ms .. ' ms waiting for ' .. what, 2)
  end
end

local function qf()
  return vim.fn.getqflist({ title = 1, items = 1, context = 1, winid = 1, id = 0 })
end

local function run()
  vim.opt.rtp:prepend(env.LOCUS_PLUGIN_DIR)
  vim.cmd('runtime! plugin/**/*.lua')
  check(vim.fn.exists(':LocateIssue') == 2 and vim.fn.exists(':LocateIssueCancel') == 2, 'plugin defines :LocateIssue and :LocateIssueCancel')

  local progress = {}
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      local p = ev.data.params
      table.insert(progress, { token = p.token, kind = p.value and p.value.kind, value = p.value })
    end,
  })

  -- The shipped config, with only the server path changed.
  vim.lsp.config('locus', { cmd = { env.LOCUS_BIN, 'lsp' } })
  vim.lsp.enable('locus')

  -- A plain Markdown file does not start Locus.
  vim.cmd('edit ' .. vim.fn.fnameescape(env.LOCUS_WS .. '/NOT_AN_ISSUE.md'))
  vim.wait(300)
  check(#vim.lsp.get_clients({ bufnr = 0, name = 'locus' }) == 0, 'not attached to an ordinary *.md buffer')

  vim.cmd('edit ' .. vim.fn.fnameescape(env.LOCUS_ISSUE))
  local issue_buf = vim.api.nvim_get_current_buf()
  wait(20000, function()
    local c = vim.lsp.get_clients({ bufnr = issue_buf, name = 'locus' })[1]
    return c and c.initialized
  end, 'locus to attach to the issue buffer')
  local client = vim.lsp.get_clients({ bufnr = issue_buf, name = 'locus' })[1]
  check(client.root_dir == env.LOCUS_WS, 'root is the repository root (.git marker)', client.root_dir)
  check(vim.tbl_get(client.server_capabilities, 'experimental', 'locus', 'locateIssue') == true, 'server advertises experimental.locus.locateIssue')

  -- Indexing progress: some token other than ours begins and ends.
  wait(INDEX_TIMEOUT, function()
    for _, p in ipairs(progress) do
      if p.kind == 'end' and not tostring(p.token):match('^locus%-nvim') then
        return true
      end
    end
  end, 'indexing progress to end')
  check(true, 'indexing reported work-done progress (LspProgress) and ended')

  -- Vectors are computed in the background; a search made before and one made after they are
  -- ready rank differently, so compare only once they are (bounded: without the encoder
  -- `embedding` is false at once).
  wait(INDEX_TIMEOUT, function()
    local r = client:request_sync('locus/status', vim.empty_dict(), 5000, issue_buf)
    return r and r.result and r.result.indexReady and not r.result.embedding
  end, 'the index and its vectors to be ready')
  local issue_text = table.concat(vim.api.nvim_buf_get_lines(issue_buf, 0, -1, false), '\n')
  local function direct(text)
    local r = client:request_sync('locus/locateIssue', { text = text }, 30000, issue_buf)
    assert(r and r.result, 'direct request failed: ' .. vim.inspect(r))
    return r.result
  end
  -- The index may need a moment after the progress ends; wait until the ranking is non-empty.
  local expected
  wait(30000, function()
    expected = direct(issue_text)
    return expected.items and #expected.items > 0
  end, 'a non-empty ranking for the issue')

  -- 1. :%LocateIssue — the whole buffer as a range.
  vim.fn.setqflist({}, 'f')
  vim.cmd('%LocateIssue')
  check(require('locus').running() ~= nil, 'a search is running after :%LocateIssue')
  local map = vim.fn.maparg('<C-c>', 'n', false, true)
  check(map.buffer == 1 and map.callback ~= nil, '<C-c> is mapped in the buffer while the search runs')
  wait(30000, function()
    return #qf().items > 0
  end, 'quickfix items')
  local l = qf()
  check(l.title:match('^Locus: ') ~= nil, 'quickfix title starts with "Locus: "', l.title)
  check(l.winid ~= 0, 'quickfix window opened')
  check(vim.fn.maparg('<C-c>', 'n', false, true).buffer ~= 1, '<C-c> mapping removed after the search')
  local first = l.items[1]
  local lines = {}
  for i, it in ipairs(l.items) do
    lines[i] = string.format('%s:%d: %s', vim.fn.fnamemodify(vim.api.nvim_buf_get_name(it.bufnr), ':.'), it.lnum, it.text)
  end
  out('# quickfix:\n#   ' .. table.concat(lines, '\n#   '))
  check(#l.items == #expected.items, 'one quickfix entry per ranked item', #l.items .. ' vs ' .. #expected.items)
  local fmt_ok = true
  for _, it in ipairs(l.items) do
    fmt_ok = fmt_ok and it.text:match('^%[%d+%.%d%d%] .+') ~= nil
  end
  check(fmt_ok, 'every entry reads "[score] name — reason"')
  local order_ok = true
  for i, it in ipairs(l.items) do
    local want = expected.items[i]
    local fname = vim.api.nvim_buf_get_name(it.bufnr)
    order_ok = order_ok
      and it.text == require('locus').format(want)
      and vim.uri_from_fname(fname) == want.uri
      and it.lnum == want.range.start.line + 1
  end
  check(order_ok, 'quickfix keeps the ranking order, files and lines of the server')
  local top_file = vim.api.nvim_buf_get_name(first.bufnr)
  if env.LOCUS_EXPECT_TOP_FILE ~= '' then
    check(vim.endswith(top_file, env.LOCUS_EXPECT_TOP_FILE), 'top hit is in ' .. env.LOCUS_EXPECT_TOP_FILE, top_file)
  end
  if env.LOCUS_EXPECT_TOP ~= '' then
    check(first.text:find(env.LOCUS_EXPECT_TOP, 1, true) ~= nil, 'top hit names ' .. env.LOCUS_EXPECT_TOP, first.text)
  end
  -- The end of the search's progress may arrive just after the response.
  local saw_begin, saw_end = false, false
  vim.wait(3000, function()
    for _, p in ipairs(progress) do
      if tostring(p.token):match('^locus%-nvim') then
        saw_begin = saw_begin or p.kind == 'begin'
        saw_end = saw_end or p.kind == 'end'
      end
    end
    return saw_begin and saw_end
  end, 20)
  check(saw_begin and saw_end, 'the search reported progress on the plugin token (begin and end)')

  -- 2. A range of lines.
  vim.cmd('cclose')
  vim.api.nvim_set_current_buf(issue_buf)
  local n = vim.api.nvim_buf_line_count(issue_buf)
  local l1, l2 = 1, math.min(n, 3)
  local part = table.concat(vim.api.nvim_buf_get_lines(issue_buf, l1 - 1, l2, false), '\n')
  local want_part = direct(part)
  vim.fn.setqflist({}, 'f')
  vim.cmd(string.format('%d,%dLocateIssue', l1, l2))
  local ok_range = vim.wait(30000, function()
    return require('locus').running() == nil
  end, 20)
  local got = qf().items
  check(ok_range and #got == #want_part.items and (#got == 0 or got[1].text == require('locus').format(want_part.items[1])),
    ':1,3LocateIssue sends those lines', #got .. ' vs ' .. #want_part.items)

  -- 3. Arguments as the text.
  local words = expected.items[1].name:match('([%w_]+)$') or 'error'
  vim.fn.setqflist({}, 'f')
  vim.cmd('LocateIssue crash in ' .. words)
  wait(30000, function()
    return require('locus').running() == nil
  end, ':LocateIssue with arguments to finish')
  check(qf().title == 'Locus: crash in ' .. words, ':LocateIssue ARGS uses the arguments as the issue', qf().title)

  -- 4. No arguments, no range: vim.ui.input.
  local asked
  local orig_input = vim.ui.input
  vim.ui.input = function(o, cb)
    asked = o.prompt
    cb(issue_text)
  end
  vim.fn.setqflist({}, 'f')
  vim.cmd('LocateIssue')
  vim.ui.input = orig_input
  check(asked == 'Locate issue: ', 'without range or args it prompts with vim.ui.input', asked)
  wait(30000, function()
    return #qf().items > 0
  end, 'quickfix after the prompt')
  check(qf().items[1].text == require('locus').format(expected.items[1]), 'the prompted text gives the same top hit')

  -- 5. Cancel: a large issue, cancelled at once (the example's searches take milliseconds, so the
  --    server may still answer with a result: the plugin must drop it); the quickfix list stays.
  local before = qf()
  local filler = {}
  for i = 1, 60000 do
    filler[i] = words .. '_' .. (i % 997)
  end
  local big = issue_text .. '\n' .. table.concat(filler, ' ')
  local id = require('locus').locate(big)
  check(id ~= nil, 'a large search starts')
  local cancel_map = vim.fn.maparg('<C-c>', 'n', false, true)
  check(cancel_map.callback ~= nil, '<C-c> cancel mapping present')
  local t0 = vim.uv.hrtime()
  cancel_map.callback()
  check(require('locus').running() == nil, '<C-c> cancels the search')
  local acked = vim.wait(5000, function()
    return client.requests[id] == nil
  end, 10)
  local ms = math.floor((vim.uv.hrtime() - t0) / 1e6)
  check(acked, 'the server answered the cancelled request within 5 s (' .. ms .. ' ms)')
  vim.wait(200)
  check(qf().id == before.id and qf().title == before.title, 'a cancelled search leaves the quickfix list alone')
  vim.cmd('LocateIssueCancel') -- nothing running: just a message
  local t1 = vim.uv.hrtime()
  local again = direct(issue_text)
  check(#again.items > 0 and (vim.uv.hrtime() - t1) / 1e6 < 5000, 'the server answers right after a cancel')

  -- 6. The native route: the server's code action on a selection (executeCommand → showDocument + diagnostics).
  vim.api.nvim_set_current_buf(issue_buf)
  local last = math.min(n, 4) - 1
  local last_line = vim.api.nvim_buf_get_lines(issue_buf, last, last + 1, false)[1] or ''
  local range = { start = { line = 0, character = 0 }, ['end'] = { line = last, character = #last_line } }
  local ca = client:request_sync('textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(issue_buf) },
    range = range,
    context = { diagnostics = {} },
  }, 10000, issue_buf)
  local action
  for _, a in ipairs((ca and ca.result) or {}) do
    if a.title == 'Locate issue from selection' then
      action = a
    end
  end
  check(action ~= nil, 'code action "Locate issue from selection" offered on a selection')
  if action then
    local cmd = action.command and action.command.command and action.command or action
    client:exec_cmd(cmd, { bufnr = issue_buf })
    wait(30000, function()
      return vim.api.nvim_get_current_buf() ~= issue_buf
    end, 'window/showDocument to open the top hit')
    local shown = vim.api.nvim_buf_get_name(0)
    local sel_text = table.concat(vim.api.nvim_buf_get_lines(issue_buf, 0, last + 1, false), '\n')
    local want_sel = direct(sel_text)
    check(#want_sel.items > 0 and vim.uri_from_fname(shown) == want_sel.items[1].uri, 'showDocument opened the top hit for the selection', shown)
    wait(10000, function()
      return #vim.diagnostic.get(0) > 0
    end, 'locus diagnostics in the top file')
    local d = vim.diagnostic.get(0)[1]
    check(d.source == 'locus' and d.severity == vim.diagnostic.severity.HINT and d.message:match('^%[%d+%.%d%d%] ') ~= nil,
      'hint diagnostics "[score] name — reason" from source locus', vim.inspect(d))
  end

  vim.lsp.stop_client(client.id)
  vim.wait(3000, function()
    return client:is_stopped()
  end)
  check(client:is_stopped(), 'client stops cleanly')
end

local ok, err = xpcall(run, debug.traceback)
if not ok then
  failed = failed + 1
  out('not ok - test aborted\n  # ' .. tostring(err):gsub('\n', '\n  # '))
end
out(string.format('%d passed, %d failed', passed, failed))
vim.cmd(failed == 0 and 'qa!' or 'cq!')
