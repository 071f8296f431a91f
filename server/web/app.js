// turbovid web page logic: models from GET /turbovid/v1/models, submit with POST
// /turbovid/v1/jobs (the image travels base64 in the JSON, as proto3 JSON writes bytes), progress
// from the job's server-sent events, the video from /turbovid/v1/jobs/ID/video.
// Every API call carries the API key of the key field (kept in localStorage) as
// `Authorization: Bearer`. EventSource and <video src> cannot send a header, so the events
// stream is read with fetch and the video is fetched whole and played from a blob URL.
'use strict';

const API = '/turbovid/v1';
const $ = (id) => document.getElementById(id);
let models = [];       // ModelInfo of the catalog
let events = null;     // AbortController of the job shown's events stream
let shownJob = '';     // job id in the job panel
let seenSteps = new Set();
let videoUrl = '';     // blob URL of the video shown
let videoFor = '';     // job whose video is being fetched or shown
const KEY_STORAGE = 'turbovid.apiKey';

function authHeaders(extra) {
  const key = $('api-key').value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

function stateName(job) { return (job.state || 'JOB_STATE_UNSPECIFIED').replace('JOB_STATE_', ''); }
function stageName(job) { return (job.stage || '').replace('STAGE_', ''); }
function isFinal(job) { return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(stateName(job)); }

async function api(path, options = {}) {
  const response = await fetch(API + path, { ...options, headers: authHeaders(options.headers) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${response.status} ${response.statusText}`);
  return body;
}

function selectedVariant() {
  const [modelId, variant] = $('model').value.split(':');
  const model = models.find((m) => m.model_id === modelId);
  return { model, variant: model && (model.variants || []).find((v) => v.variant === variant) };
}

function onModelChange() {
  const { model, variant } = selectedVariant();
  if (!model || !variant) return;
  $('image-row').hidden = !variant.is_i2v;
  $('image').required = !!variant.is_i2v;
  $('frames').value = model.default_num_frames || 81;
  $('width').value = model.default_width_pixels || '';
  $('height').value = model.default_height_pixels || '';
  $('steps').value = variant.default_steps || '';
  $('steps').max = variant.max_steps || '';
  const served = variant.workers || 0;
  $('model-info').textContent =
      `${variant.is_i2v ? 'image-to-video' : 'text-to-video'}, ${variant.sampler} sampler, ` +
      `${variant.attention} attention, ${variant.weights}; ` +
      (served ? `${served} worker(s) serve it (${variant.workers_loaded || 0} loaded)`
              : `no registered worker serves it (node classes: ${(variant.node_classes || []).join(', ')})`);
}

async function loadModels() {
  const response = await api('/models');
  models = response.models || [];
  const select = $('model');
  select.innerHTML = '';
  let preferred = '';
  for (const model of models) {
    for (const variant of model.variants || []) {
      const option = document.createElement('option');
      option.value = `${model.model_id}:${variant.variant}`;
      option.textContent = `${model.model_id} · ${variant.variant}` +
          (variant.is_i2v ? ' (I2V)' : '') + (variant.workers ? '' : ' — no worker');
      select.appendChild(option);
      if (!preferred && variant.workers) preferred = option.value;
    }
  }
  if (preferred) select.value = preferred;
  onModelChange();
}

async function loadWorkers() {
  try {
    const response = await api('/workers');
    const workers = response.workers || [];
    const classes = {};
    for (const w of workers) classes[w.node_class] = (classes[w.node_class] || 0) + 1;
    $('workers').textContent = workers.length ?
        'workers: ' + Object.entries(classes).map(([c, n]) => `${n} ${c}`).join(', ') :
        'no workers registered';
  } catch (e) {
    $('workers').textContent = `workers: ${e.message}`;
  }
}

function readFileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

async function submit(event) {
  event.preventDefault();
  $('submit-error').textContent = '';
  const { model, variant } = selectedVariant();
  if (!model || !variant) return;
  const request = {
    model_id: model.model_id,
    variant: variant.variant,
    prompt: $('prompt').value,
    num_frames: Number($('frames').value) || 0,
    num_steps: Number($('steps').value) || 0,
    size: { width_pixels: Number($('width').value) || 0, height_pixels: Number($('height').value) || 0 },
  };
  if ($('seed').value !== '') request.seed = $('seed').value; else request.random_seed = true;
  const file = $('image').files[0];
  if (variant.is_i2v && file) request.image = await readFileBase64(file);
  $('submit').disabled = true;
  try {
    const job = await api('/jobs', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request),
    });
    showJob(job.job_id);
    loadJobs();
  } catch (e) {
    $('submit-error').textContent = e.message;
  } finally {
    $('submit').disabled = false;
  }
}

function render(job) {
  if (job.job_id !== shownJob) return;
  const state = stateName(job);
  $('job-state').textContent = state;
  $('job-state').dataset.state = state;
  let stage = stageName(job);
  if (state === 'RUNNING' && stage === 'DENOISING' && job.num_steps) {
    stage += ` step ${job.step || 0}/${job.num_steps}`;
    if (job.step && !seenSteps.has(job.step)) {
      seenSteps.add(job.step);
      const item = document.createElement('li');
      item.textContent = `step ${job.step}/${job.num_steps}`;
      $('job-steps').appendChild(item);
    }
  }
  if (state === 'QUEUED' && job.queue_position) stage = `position ${job.queue_position}`;
  $('job-stage').textContent = state === 'RUNNING' || state === 'QUEUED' ? stage : '';
  $('job-progress').value = Math.round((job.progress || 0) * 100);
  $('job-message').textContent = job.status_message || '';
  $('job-error').textContent = job.error || '';
  $('cancel').hidden = isFinal(job);
  if (state === 'SUCCEEDED' && videoFor !== job.job_id) {
    videoFor = job.job_id;
    showVideo(job).catch((e) => { $('job-error').textContent = `video: ${e.message}`; });
  }
}

async function showVideo(job) {
  const response = await fetch(`${API}/jobs/${encodeURIComponent(job.job_id)}/video`,
                               { headers: authHeaders() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.message || `${response.status} ${response.statusText}`);
  }
  const blob = await response.blob();
  if (job.job_id !== shownJob) return;
  if (videoUrl) URL.revokeObjectURL(videoUrl);
  videoUrl = URL.createObjectURL(new Blob([blob], { type: 'video/mp4' }));
  $('video').src = videoUrl;
  $('download').href = videoUrl;
  $('download').setAttribute('download', `${job.job_id}.mp4`);
  $('video-info').textContent = `${job.width_pixels}x${job.height_pixels}, ` +
      `${(job.request || {}).num_frames} frames, ${job.video_bytes} bytes, seed ${job.seed}`;
  $('result').hidden = false;
  $('video').play().catch(() => {});
}

// The job's server-sent events over fetch (with the key): calls onJob for each `job` event until
// the stream ends or `signal` aborts. Returns normally when the stream ends.
async function readEvents(jobId, signal, onJob) {
  const response = await fetch(`${API}/jobs/${encodeURIComponent(jobId)}/events`,
                               { headers: authHeaders({ Accept: 'text/event-stream' }), signal });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(body.message || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (name === 'job' && data.length) onJob(JSON.parse(data.join('\n')));
    }
  }
}

function showJob(jobId) {
  if (events) events.abort();
  shownJob = jobId;
  seenSteps = new Set();
  videoFor = '';
  $('job-panel').hidden = false;
  $('job-id').textContent = jobId;
  // Nothing of the previous job stays beside this one's id until its first event renders.
  $('job-state').textContent = '';
  delete $('job-state').dataset.state;
  $('job-stage').textContent = '';
  $('job-error').textContent = '';
  $('job-steps').innerHTML = '';
  $('result').hidden = true;
  $('video').removeAttribute('src');
  $('video-info').textContent = '';  // the previous job's, until this one succeeds
  const watch = new AbortController();
  events = watch;
  (async () => {
    // A dropped stream (scheduler restart) is read again after a second, until the job is final.
    for (let final = false; !final && !watch.signal.aborted;) {
      try {
        await readEvents(jobId, watch.signal, (job) => {
          render(job);
          if (isFinal(job)) final = true;
        });
        if (!final) render(await api(`/jobs/${encodeURIComponent(jobId)}`));
      } catch (e) {
        if (watch.signal.aborted) return;
        $('job-error').textContent = e.message;
        if (e.status >= 400 && e.status < 500) break;  // no key, wrong key, no such job: stop
      }
      if (!final) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    if (!watch.signal.aborted) {
      watch.abort();
      loadJobs();
    }
  })();
}

async function cancel() {
  try {
    render(await api(`/jobs/${encodeURIComponent(shownJob)}:cancel`, { method: 'POST' }));
  } catch (e) {
    $('job-error').textContent = e.message;
  }
}

async function loadJobs() {
  try {
    const response = await api('/jobs?page_size=20');
    const body = $('jobs').querySelector('tbody');
    body.innerHTML = '';
    for (const job of response.jobs || []) {
      const row = document.createElement('tr');
      row.dataset.jobId = job.job_id;
      const created = new Date((job.created_unix_seconds || 0) * 1000).toLocaleTimeString();
      const request = job.request || {};
      for (const text of [job.job_id, `${request.model_id}:${request.variant}`, stateName(job),
                          `${job.width_pixels}x${job.height_pixels}`, request.num_frames, created]) {
        const cell = document.createElement('td');
        cell.textContent = text === undefined ? '' : String(text);
        row.appendChild(cell);
      }
      row.addEventListener('click', () => showJob(job.job_id));
      body.appendChild(row);
    }
  } catch (e) {
    $('submit-error').textContent = `jobs: ${e.message}`;
  }
}

function refreshAll() {
  loadModels().catch((e) => { $('submit-error').textContent = `models: ${e.message}`; });
  loadWorkers();
  loadJobs();
}

$('api-key').value = localStorage.getItem(KEY_STORAGE) || '';
$('api-key').addEventListener('change', () => {
  localStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
  $('submit-error').textContent = '';
  refreshAll();
});
$('model').addEventListener('change', onModelChange);
$('submit-form').addEventListener('submit', submit);
$('cancel').addEventListener('click', cancel);
$('refresh').addEventListener('click', refreshAll);
refreshAll();
setInterval(loadWorkers, 10000);
