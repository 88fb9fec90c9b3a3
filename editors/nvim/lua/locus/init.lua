--- Locus for Neovim: send `locus/locateIssue`, show the ranking in the quickfix list.
local M = {}

---@class locus.Config
---@field max_results? integer   maxResults sent with each request (server default when nil)
---@field granularity? 'function'|'file'
---@field open_quickfix boolean  open the quickfix window after a search
---@field progress boolean       echo the server's work-done progress
---@field cancel_key string|false  buffer-local normal-mode key that cancels a running search
M.config = {
  max_results = nil,
  granularity = nil,
  open_quickfix = true,
  progress = true,
  cancel_key = '<C-c>',
}

--- The server binary: `vim.g.locus_server_path`, else the release bundle's when this plugin is
--- the bundle's `share/locus/nvim` folder (`<bundle>/bin/locus`), else `locus` on PATH.
---@return string
function M.server_path()
  if vim.g.locus_server_path then
    return vim.g.locus_server_path
  end
  local here = debug.getinfo(1, 'S').source:gsub('^@', '')
  -- <bundle>/share/locus/nvim/lua/locus/init.lua -> <bundle>/bin/locus
  local root = vim.fs.normalize(vim.fn.fnamemodify(here, ':p:h:h:h:h:h:h'))
  local bundled = root .. '/bin/locus'
  if vim.uv.fs_stat(root .. '/MANIFEST.sha256') and vim.fn.executable(bundled) == 1 then
    return bundled
  end
  return 'locus'
end

---@param opts? locus.Config
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
end

-- The search in flight (at most one): { client, id, token, bufnr, key_set }.
local current = nil
local counter = 0
-- Progress tokens Locus's own requests use, so we echo only those (plus the server's indexing).
local own_tokens = {}

local function notify(msg, level)
  vim.notify('Locus: ' .. msg, level or vim.log.levels.INFO)
end

local function is_locus(client)
  if not client then
    return false
  end
  if client.name == 'locus' then
    return true
  end
  local caps = client.server_capabilities or {}
  return vim.tbl_get(caps, 'experimental', 'locus', 'locateIssue') == true
end

--- A running Locus client: the one attached to the buffer, else any, else one started now.
---@param bufnr integer
---@return vim.lsp.Client?
function M.client(bufnr)
  for _, c in ipairs(vim.lsp.get_clients({ bufnr = bufnr })) do
    if is_locus(c) then
      return c
    end
  end
  for _, c in ipairs(vim.lsp.get_clients()) do
    if is_locus(c) then
      return c
    end
  end
  local cfg = vim.lsp.config.locus
  if not cfg then
    return nil
  end
  cfg = vim.deepcopy(cfg)
  if type(cfg.root_dir) ~= 'string' then
    cfg.root_dir = vim.fs.root(bufnr, cfg.root_markers or { '.git' }) or vim.fn.getcwd()
  end
  cfg.name = 'locus'
  local id = vim.lsp.start(cfg, { bufnr = bufnr, silent = true })
  local client = id and vim.lsp.get_client_by_id(id)
  if client then
    vim.wait(10000, function()
      return client.initialized or client:is_stopped()
    end, 20)
  end
  return client and client.initialized and client or nil
end

local function clear_current()
  if not current then
    return
  end
  if current.key_set and vim.api.nvim_buf_is_valid(current.bufnr) then
    pcall(vim.keymap.del, 'n', M.config.cancel_key, { buffer = current.bufnr })
  end
  own_tokens[current.token] = nil
  current = nil
end

--- One quickfix line: `[0.87] name — reason`.
---@param item table a LocatedItem
---@return string
function M.format(item)
  local score = type(item.score) == 'number' and string.format('%.2f', item.score) or '?'
  local text = string.format('[%s] %s', score, item.name or '?')
  if item.reason and item.reason ~= '' then
    text = text .. ' — ' .. item.reason
  end
  return text
end

--- Quickfix items in ranking order (locations_to_items groups by file; the ranking is restored).
---@param items table[] LocatedItem[]
---@param encoding string the client's offset encoding
---@return vim.quickfix.entry[]
function M.to_qf_items(items, encoding)
  local rank = {}
  for i, it in ipairs(items) do
    rank[it] = i
  end
  local qf = vim.lsp.util.locations_to_items(items, encoding)
  table.sort(qf, function(a, b)
    return (rank[a.user_data] or math.huge) < (rank[b.user_data] or math.huge)
  end)
  for _, e in ipairs(qf) do
    e.text = M.format(e.user_data)
  end
  return qf
end

local function title_of(text)
  local line = vim.trim((text:match('[^\n]*%S[^\n]*') or text))
  line = line:gsub('^#+%s*', '')
  if #line > 60 then
    line = line:sub(1, 57) .. '...'
  end
  return 'Locus: ' .. line
end

local function show(result, client, text)
  local items = (result and result.items) or {}
  if #items == 0 then
    local stats = result and result.stats or {}
    if stats.indexReady == false then
      notify('no location yet: the workspace is still being indexed, try again in a moment')
    else
      notify('no location found for this issue')
    end
    return
  end
  local qf = M.to_qf_items(items, client.offset_encoding)
  vim.fn.setqflist({}, ' ', {
    title = title_of(text),
    items = qf,
    context = { locus = { stats = result.stats } },
  })
  if M.config.open_quickfix then
    vim.cmd('botright copen')
  end
  local s = result.stats or {}
  local msg = string.format('%d location%s', #items, #items == 1 and '' or 's')
  if type(s.ms) == 'number' then
    msg = msg .. string.format(' in %d ms', math.floor(s.ms + 0.5))
  end
  if type(s.turns) == 'number' and type(s.calls) == 'number' then
    msg = msg .. string.format(', %d turns, %d calls', s.turns, s.calls)
  end
  if type(s.efficiency) == 'number' then
    msg = msg .. string.format(', efficiency %.2f', s.efficiency)
  end
  vim.api.nvim_echo({ { 'Locus: ' .. msg } }, false, {})
end

--- Locate `text`: sends `locus/locateIssue` and fills the quickfix list. Returns the request id.
---@param text string
---@param opts? { bufnr?: integer, on_done?: fun(err: table?, result: table?) }
---@return integer?
function M.locate(text, opts)
  opts = opts or {}
  if not text or vim.trim(text) == '' then
    notify('no issue text', vim.log.levels.WARN)
    return nil
  end
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify(
      'no Locus server: add editors/nvim to the runtimepath and run vim.lsp.enable("locus") (needs `locus` on PATH or vim.g.locus_server_path)',
      vim.log.levels.ERROR
    )
    return nil
  end
  if current then
    M.cancel(true)
  end
  counter = counter + 1
  local token = string.format('locus-nvim-%d-%d', vim.fn.getpid(), counter)
  local params = {
    text = text,
    maxResults = M.config.max_results,
    granularity = M.config.granularity,
    workDoneToken = token,
  }
  local this = { client = client, token = token, bufnr = bufnr }
  own_tokens[token] = true
  local ok, id = client:request('locus/locateIssue', params, function(err, result)
    if current ~= this then
      return -- cancelled or superseded
    end
    clear_current()
    if err then
      notify('locating the issue failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      show(result, client, text)
    end
    if opts.on_done then
      opts.on_done(err, result)
    end
  end, bufnr)
  if not ok then
    own_tokens[token] = nil
    notify('the server is not running', vim.log.levels.ERROR)
    return nil
  end
  this.id = id
  current = this
  if M.config.cancel_key and vim.fn.maparg(M.config.cancel_key, 'n', false, true).buffer ~= 1 then
    vim.keymap.set('n', M.config.cancel_key, function()
      M.cancel()
    end, { buffer = bufnr, desc = 'Locus: cancel the running search' })
    this.key_set = true
  end
  vim.api.nvim_echo({ { 'Locus: locating issue… (:LocateIssueCancel to stop)' } }, false, {})
  return id
end

--- Cancel the running search (sends `$/cancelRequest`).
---@param quiet? boolean
---@return boolean cancelled whether a search was running
function M.cancel(quiet)
  if not current then
    if not quiet then
      notify('no search is running')
    end
    return false
  end
  local c = current
  clear_current()
  if c.id and not c.client:is_stopped() then
    c.client:cancel_request(c.id)
  end
  if not quiet then
    vim.api.nvim_echo({ { 'Locus: cancelled' } }, false, {})
  end
  return true
end

---@return { id: integer, token: string }? the search in flight
function M.running()
  return current and { id = current.id, token = current.token } or nil
end

--- LspProgress handler: echo Locus's progress (indexing and our own searches).
function M._on_progress(ev)
  if not M.config.progress then
    return
  end
  local client = vim.lsp.get_client_by_id(ev.data.client_id)
  if not is_locus(client) then
    return
  end
  local p = ev.data.params or {}
  local v = p.value or {}
  local token = p.token
  if type(token) == 'string' and token:match('^locus%-nvim%-') and not own_tokens[token] then
    return -- a search we already cancelled
  end
  local msg = v.message or v.title or ''
  if v.kind == 'begin' and v.title and v.message then
    msg = v.title .. ': ' .. v.message
  end
  if v.percentage then
    msg = string.format('%s (%d%%)', msg, v.percentage)
  end
  if v.kind == 'end' then
    msg = (v.message and v.message ~= '') and v.message or 'done'
  end
  vim.api.nvim_echo({ { 'Locus: ' .. msg } }, false, {})
end

return M
