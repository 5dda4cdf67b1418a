// What ODK Web Forms 0.22 cannot do on a phone, added around its components:
//
// - a drawing pad for `appearance=signature` image questions (0.22 offers only "choose image"):
//   the drawing becomes a PNG, the question's file answer;
// - a file picker for `file` (and audio/video) questions, which 0.22 shows as "non-image uploads
//   pending": any file (PDF decrees, reports) becomes the question's file answer;
// - typed dates the picker understands (dates.js).
//
// A Vue global mixin sees each of the renderer's components with its props: for an upload
// question that is the engine's node, whose setValue(File) is how the renderer's own image
// control answers. So the file goes where a photo goes: into the submission payload (the XML
// answer is the file name, the multipart part is named as the file), the outbox, a draft.
// Our elements sit next to the renderer's, are built with textContent only (a form's label is
// text, never markup) and are removed when the renderer removes the question.

import { el } from './common.js';
import { enhanceDateInput } from './dates.js';

export function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toLocaleString(document.documentElement.lang || 'id',
                                 { maximumFractionDigits: value < 10 ? 1 : 0 })} ${units[unit]}`;
}

const EXTENSIONS = {
  'application/pdf': '.pdf', 'image/jpeg': '.jpg', 'image/png': '.png', 'image/heic': '.heic',
  'application/msword': '.doc', 'application/vnd.ms-excel': '.xls',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': '.docx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': '.xlsx',
  'text/plain': '.txt', 'text/csv': '.csv', 'application/zip': '.zip',
};

// The engine keeps only the extension of a file's name (the rest is the time it was chosen):
// a name without a plain one gets the extension of its type, so the server and the officer's
// supervisor still see a .pdf.
export function withPlainExtension(file) {
  const found = /\.([A-Za-z0-9]{1,10})$/.exec(file.name || '');
  if (found) return file;
  const extension = EXTENSIONS[(file.type || '').toLowerCase()] || '';
  const base = (file.name || 'file').replace(/\.[^.]*$/, '') || 'file';
  return new File([file], `${base}${extension}`, { type: file.type || 'application/octet-stream' });
}

function plainText(range) {
  if (!range) return '';
  if (typeof range.asString === 'string') return range.asString;
  return String(range);
}

// ---- the signature pad -------------------------------------------------------------------------

function signaturePad(question, { t, host }) {
  const canvas = el('canvas', { class: 'wf-sign-canvas', 'data-wf-signature-canvas': true,
                                'aria-label': t('signHint') });
  const hint = el('p', { class: 'wf-muted', text: t('signHint') });
  const empty = el('p', { class: 'wf-error', text: t('signEmpty'), hidden: true });
  const open = el('button', { type: 'button', class: 'wf-sign-open', 'data-wf-signature-open': true });
  const restart = el('button', { type: 'button', class: 'wf-secondary', text: t('signRestart') });
  const cancel = el('button', { type: 'button', class: 'wf-secondary', text: t('cancel') });
  const use = el('button', { type: 'button', 'data-wf-signature-use': true, text: t('signUse') });
  const pad = el('div', { class: 'wf-sign-pad', hidden: true }, hint, canvas, empty,
                 el('div', { class: 'wf-actions' }, restart, cancel, use));
  const node = el('div', { class: 'wf-sign', 'data-wf-own': true, 'data-wf-signature': true },
                  open, pad);
  let context = null;
  let drawn = false;
  let last = null;

  const labelOpen = () => {
    open.textContent = question.currentState.value ? t('signAgain') : t('signDraw');
    open.disabled = question.currentState.readonly === true;
  };

  const clear = () => {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, Math.round(pad.clientWidth || host.clientWidth || 300));
    const height = Math.round(Math.min(240, Math.max(150, width * 0.5)));
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.fillStyle = '#ffffff';  // a white sheet, as Collect's signatures
    context.fillRect(0, 0, width, height);
    context.strokeStyle = '#111827';
    context.lineWidth = 2.4;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    drawn = false;
    empty.hidden = true;
  };

  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  };
  canvas.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    canvas.setPointerCapture?.(event.pointerId);
    last = point(event);
    context.beginPath();
    context.arc(last.x, last.y, context.lineWidth / 2, 0, Math.PI * 2);
    context.fillStyle = context.strokeStyle;
    context.fill();
    drawn = true;
    empty.hidden = true;
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    context.beginPath();
    context.moveTo(last.x, last.y);
    for (const each of events.length ? events : [event]) {
      last = point(each);
      context.lineTo(last.x, last.y);
    }
    context.stroke();
  });
  const stop = () => { last = null; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);

  const close = () => {
    pad.hidden = true;
    open.hidden = false;
    labelOpen();
  };
  open.addEventListener('click', () => {
    pad.hidden = false;
    open.hidden = true;
    clear();
    canvas.scrollIntoView({ block: 'nearest' });
  });
  restart.addEventListener('click', clear);
  cancel.addEventListener('click', close);
  use.addEventListener('click', () => {
    if (!drawn) {
      empty.hidden = false;
      return;
    }
    canvas.toBlob((blob) => {
      if (!blob) return;
      // The engine names the attachment as Collect does (the time it was written + .png).
      question.setValue(new File([blob], 'signature.png', { type: 'image/png' }));
      close();
    }, 'image/png');
  });
  labelOpen();
  return { node, update: labelOpen };
}

// ---- the file picker ---------------------------------------------------------------------------

const WILDCARDS = /^(image|audio|video)\/\*$/;
// The attachment's name (the engine's, "1796474670473.pdf") -> the name of the file the officer
// chose on this page, which is what the officer recognises.
const chosenAs = new Map();

// The accept attribute for a question's mediatype: an exact type, or image/audio/video/*;
// anything broader ("application/*", "*/*") lets every file through, as Collect does.
export function acceptFor(mediatype) {
  const value = String(mediatype || '').trim().toLowerCase();
  if (!value || value === '*' || value === '*/*' || (value.endsWith('/*') && !WILDCARDS.test(value))) {
    return '';
  }
  return value;
}

function accepts(accept, file) {
  if (!accept) return true;
  const type = (file.type || '').toLowerCase();
  return accept.split(',').map((a) => a.trim()).some((wanted) => {
    if (wanted.endsWith('/*')) return type.startsWith(wanted.slice(0, -1));
    if (wanted.startsWith('.')) return file.name.toLowerCase().endsWith(wanted);
    return type === wanted;
  });
}

function filePicker(question, { t, maxBytes }) {
  const id = `${question.nodeId}_wf_file`;
  const media = (question.nodeOptions && question.nodeOptions.media) || {};
  const accept = acceptFor(media.accept);
  const label = el('label', { for: id, class: 'wf-file-label' });
  const hint = el('p', { class: 'wf-file-hint' });
  const input = el('input', { type: 'file', hidden: true, accept: accept || null,
                              'data-wf-file-input': true });
  const choose = el('button', { type: 'button', id, 'data-wf-file-choose': true });
  const name = el('span', { class: 'wf-file-name', 'data-wf-file-name': true });
  const size = el('span', { class: 'wf-muted' });
  const remove = el('button', { type: 'button', class: 'wf-link', 'data-wf-file-remove': true,
                                text: t('removeFile') });
  const chosen = el('div', { class: 'wf-file-chosen', hidden: true }, name, size, remove);
  const none = el('span', { class: 'wf-muted', 'data-wf-file-none': true, text: t('noFile') });
  const problem = el('p', { class: 'wf-error', role: 'alert', hidden: true,
                            'data-wf-file-problem': true });
  const violation = el('p', { class: 'wf-file-violation', 'data-wf-file-violation': true });
  const node = el('div', { class: 'wf-file', 'data-wf-own': true, 'data-wf-file': true },
                  label, hint, input, el('div', { class: 'wf-file-row' }, choose, none, chosen),
                  problem, violation);

  let lastChosen = null;
  choose.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    input.value = '';
    problem.hidden = true;
    if (!file) return;
    if (!accepts(accept, file)) {
      problem.textContent = t('fileWrongType', { name: file.name, accept });
      problem.hidden = false;
      return;
    }
    // The outbox splits a record between files, never a file: each must fit in one POST with
    // the XML, under the server's limit; a bigger one could never be sent.
    if (maxBytes && file.size > maxBytes - 64 * 1024) {
      problem.textContent = t('fileTooBig', { name: file.name, size: humanSize(file.size),
                                              max: humanSize(maxBytes) });
      problem.hidden = false;
      return;
    }
    // The engine names the attachment as Collect does: the time it was chosen + the file's
    // extension ("1796474670473.pdf"); that name is the XML answer and the multipart part.
    lastChosen = file;
    question.setValue(withPlainExtension(file));
  });
  remove.addEventListener('click', () => {
    problem.hidden = true;
    question.setValue(null);
  });

  const update = () => {
    const state = question.currentState;
    label.textContent = plainText(state.label);
    label.classList.toggle('required', state.required === true);
    hint.textContent = plainText(state.hint);
    hint.hidden = !hint.textContent;
    const file = state.value;
    chosen.hidden = !file;
    none.hidden = !!file;
    if (file && lastChosen && !chosenAs.has(file.name) && file.size === lastChosen.size) {
      chosenAs.set(file.name, lastChosen.name);
    }
    name.textContent = file ? chosenAs.get(file.name) || file.name : '';
    name.title = file ? file.name : '';
    size.textContent = file ? humanSize(file.size) : '';
    choose.textContent = file ? t('replaceFile') : t('chooseFile');
    choose.disabled = remove.disabled = state.readonly === true;
    remove.hidden = state.readonly === true;
    const broken = question.validationState && question.validationState.violation;
    violation.textContent = broken && broken.message ? plainText(broken.message) : '';
  };
  return { node, update };
}

// ---- the mixin ---------------------------------------------------------------------------------

function questionContainer(instance) {
  const start = instance.$el;
  const parent = start && (start.nodeType === Node.ELEMENT_NODE ? start : start.parentElement);
  return parent ? parent.closest('.question-container') : null;
}

function watchState(instance, question, update) {
  instance.$watch(() => [
    question.currentState.value, question.currentState.label, question.currentState.hint,
    question.currentState.required, question.currentState.readonly,
    question.validationState && question.validationState.violation,
  ], update, { immediate: true });
}

// `t(name, values)`: the page's strings; `maxBytes`: the server's submission limit;
// `dates`: {order, placeholder, problem(text, example)}.
export function widgetsMixin({ t, maxBytes, dates }) {
  const cleanups = new WeakMap();
  const keep = (instance, cleanup) => cleanups.set(instance, cleanup);
  return {
    mounted() {
      const name = this.$options.__name;
      if (name !== 'UploadImageControl' && name !== 'UploadFileControl' && name !== 'InputDate') {
        return;
      }
      if (name === 'InputDate') {
        if (this.$el && this.$el.nodeType === Node.ELEMENT_NODE) {
          keep(this, enhanceDateInput(this.$el, dates));
        }
        return;
      }
      const question = this.$props && this.$props.question;
      const container = questionContainer(this);
      if (!question || !container) return;
      if (name === 'UploadImageControl') {
        if (!(question.appearances && question.appearances.signature)) return;
        const buttons = container.querySelector(':scope > .capture-buttons');
        if (!buttons) return;
        const pad = signaturePad(question, { t, host: container });
        buttons.style.display = 'none';  // "take picture", "choose image": not a signature
        buttons.after(pad.node);
        watchState(this, question, pad.update);
        keep(this, () => pad.node.remove());
      } else {
        const picker = filePicker(question, { t, maxBytes });
        if (this.$el && this.$el.nodeType === Node.ELEMENT_NODE) {
          this.$el.style.display = 'none';  // "support for non-image uploads is pending"
          this.$el.after(picker.node);
        } else {
          container.append(picker.node);
        }
        watchState(this, question, picker.update);
        keep(this, () => picker.node.remove());
      }
    },
    beforeUnmount() {
      const cleanup = cleanups.get(this);
      if (cleanup) {
        cleanups.delete(this);
        cleanup();
      }
    },
  };
}
