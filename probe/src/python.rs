//! The calling thread's Python name (`threading`'s: `MainThread`, `Thread-2 (run_forever)`),
//! which CPython before 3.14 never gives the kernel, read through CPython's C API when the
//! program runs CPython and the calling thread holds the GIL.
//!
//! The C API is found lazily with `dlsym(RTLD_DEFAULT)` at the first call and remembered
//! (present or absent): a program without CPython's symbols pays one failed lookup and is
//! otherwise untouched.
//!
//! Why calling into Python here is sound:
//!
//! - **Only with the GIL held by this thread**, checked three ways: the interpreter is
//!   initialized (`Py_IsInitialized`), `PyGILState_Check()` is 1, and the thread state the
//!   GIL machinery associates with this thread is the one currently running
//!   (`PyGILState_GetThisThreadState() == PyThreadState_GetUnchecked()`,
//!   `_PyThreadState_UncheckedGet` before 3.13). The last check
//!   matters because `PyGILState_Check` answers 1 whenever it cannot tell (before the
//!   interpreter starts, after it ends, once subinterpreters exist). The GIL is never taken
//!   here: a thread that does not hold it gets no Python name (pyzmq releases it around
//!   `zmq_ctx_destroy`, for instance).
//! - **Only from the socket lifecycle wrappers** (`zmq_socket`, `zmq_close`, term), which a
//!   program calls as ordinary functions, never from a signal handler; Python's own handlers
//!   run later in its main loop. Allocating inside Python (the few `str` and `int` objects made
//!   here, a string's UTF-8 cache) is then as safe as any other C API call; the probe's own
//!   code still allocates nothing.
//! - **No Python code runs**: `threading` is looked up in `sys.modules` with plain dictionary
//!   reads (`PySys_GetObject`, `PyDict_GetItemString`), never imported (without it loaded there
//!   is no Python thread name to find) and never waited for (`PyImport_GetModule` would wait,
//!   running importlib, for a module another thread is still importing); attributes are read
//!   with `PyObject_GenericGetAttr` (the plain attributes `threading._active` and
//!   `Thread._name`: no property, `__getattr__` or `__getattribute__` override runs, so not
//!   `Thread.name`, a property); the thread is looked up by its integer ident with
//!   `PyDict_GetItem`; the only objects made are `str` and `int`, which the cyclic garbage
//!   collector does not track, so no collection (and no finalizer) starts. The GIL is
//!   therefore never released in between. (Only when `_active` or `_name` is missing, or the
//!   name is not a `str`, which `threading` never does by itself, is an exception object made,
//!   then dropped.)
//! - **The program's state is left as it was**: a pending exception is set aside
//!   (`PyErr_Fetch`) and put back (`PyErr_Restore`, which also drops any error raised here),
//!   every new reference is released, borrowed ones are held for the time they are used (the
//!   `_active` entry read is the calling thread's own, which no other thread adds or removes).
//!   `errno` is restored by the wrappers.
//! - **Fork-safe**: nothing is locked or cached but function addresses, which a forked child
//!   shares.

use core::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// A `PyObject *`.
type Obj = *mut c_void;

const RTLD_DEFAULT: *mut c_void = null_mut();

/// Declares the C API functions used: the struct holding them, their names (each with the
/// alternatives older or newer CPythons export it under) and their resolved addresses.
macro_rules! python_api {
    ($($(#[$doc:meta])* $field:ident = [$($name:literal),+]: fn($($arg:ty),*) $(-> $ret:ty)?;)+) => {
        /// CPython's C API functions the probe calls.
        struct Api {
            $($(#[$doc])* $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)+
        }

        /// Each function's names, first choice first.
        const NAMES: &[&[&CStr]] = &[$(&[$($name),+]),+];

        /// Their addresses, valid once [`STATE`] is [`PRESENT`].
        static ADDRS: [AtomicUsize; NAMES.len()] = [const { AtomicUsize::new(0) }; NAMES.len()];

        impl Api {
            /// The functions at `addrs`.
            ///
            /// # Safety
            /// Each address is the CPython function its name in [`NAMES`] names.
            unsafe fn at(addrs: [usize; NAMES.len()]) -> Api {
                let [$($field),+] = addrs;
                Api {
                    $(
                        // SAFETY: the caller's promise; the signature is CPython's.
                        $field: unsafe {
                            core::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                                $field,
                            )
                        },
                    )+
                }
            }
        }
    };
}

python_api! {
    /// `Py_IsInitialized`.
    is_initialized = [c"Py_IsInitialized"]: fn() -> c_int;
    /// `PyGILState_Check`.
    gil_check = [c"PyGILState_Check"]: fn() -> c_int;
    /// `PyGILState_GetThisThreadState`: this thread's state, held or not.
    this_thread_state = [c"PyGILState_GetThisThreadState"]: fn() -> *mut c_void;
    /// The running thread state, NULL-safe (before 3.12 the GIL holder's, since then the calling
    /// thread's while it holds the GIL); private before 3.13.
    running_thread_state =
        [c"PyThreadState_GetUnchecked", c"_PyThreadState_UncheckedGet"]: fn() -> *mut c_void;
    /// `PyThread_get_thread_ident`: the key of `threading._active`.
    thread_ident = [c"PyThread_get_thread_ident"]: fn() -> c_ulong;
    /// `PyErr_Fetch`.
    err_fetch = [c"PyErr_Fetch"]: fn(*mut Obj, *mut Obj, *mut Obj);
    /// `PyErr_Restore`.
    err_restore = [c"PyErr_Restore"]: fn(Obj, Obj, Obj);
    /// `PyUnicode_InternFromString`: a new reference to the interned `str` (attribute lookups
    /// with it hit the type's method cache instead of replacing an entry).
    interned = [c"PyUnicode_InternFromString"]: fn(*const c_char) -> Obj;
    /// `PySys_GetObject`: a borrowed reference, NULL (no error) when missing.
    sys_get = [c"PySys_GetObject"]: fn(*const c_char) -> Obj;
    /// `PyDict_GetItemString`: a borrowed reference, errors suppressed, NULL for a non-dict.
    dict_get_string = [c"PyDict_GetItemString"]: fn(Obj, *const c_char) -> Obj;
    /// `PyObject_GenericGetAttr`: a new reference.
    getattr = [c"PyObject_GenericGetAttr"]: fn(Obj, Obj) -> Obj;
    /// `PyDict_GetItem`: a borrowed reference, errors suppressed, NULL for a non-dict.
    dict_get = [c"PyDict_GetItem"]: fn(Obj, Obj) -> Obj;
    /// `PyLong_FromUnsignedLong`: a new reference.
    long = [c"PyLong_FromUnsignedLong"]: fn(c_ulong) -> Obj;
    /// `PyUnicode_AsUTF8AndSize`: a buffer the string owns.
    utf8 = [c"PyUnicode_AsUTF8AndSize"]: fn(Obj, *mut isize) -> *const c_char;
    /// `Py_IncRef`.
    incref = [c"Py_IncRef"]: fn(Obj);
    /// `Py_DecRef`.
    decref = [c"Py_DecRef"]: fn(Obj);
}

/// [`STATE`]: not looked up yet.
const UNKNOWN: u8 = 0;
/// [`STATE`]: CPython's symbols are not in the process.
const ABSENT: u8 = 1;
/// [`STATE`]: [`ADDRS`] holds them all.
const PRESENT: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The C API, looked up at the first call (threads racing here store the same addresses).
fn api() -> Option<Api> {
    let state = match STATE.load(Ordering::Acquire) {
        UNKNOWN => resolve(),
        state => state,
    };
    if state != PRESENT {
        return None;
    }
    let addrs = core::array::from_fn(|i| ADDRS[i].load(Ordering::Relaxed));
    // SAFETY: resolve stored each name's symbol before PRESENT.
    Some(unsafe { Api::at(addrs) })
}

fn resolve() -> u8 {
    for (names, addr) in NAMES.iter().zip(&ADDRS) {
        let found = names.iter().find_map(|name| {
            // SAFETY: a lookup of a NUL-terminated name in the global scope.
            let symbol = unsafe { crate::dlsym(RTLD_DEFAULT, name.as_ptr()) };
            (!symbol.is_null()).then_some(symbol as usize)
        });
        match found {
            Some(symbol) => addr.store(symbol, Ordering::Relaxed),
            None => {
                STATE.store(ABSENT, Ordering::Release);
                return ABSENT;
            }
        }
    }
    STATE.store(PRESENT, Ordering::Release);
    PRESENT
}

/// Copies the calling thread's Python name into `out` (cut to its length) and returns its
/// length; `None` when the program does not run CPython, this thread does not hold the GIL,
/// `threading` is not loaded or does not know this thread.
pub fn thread_name(out: &mut [u8]) -> Option<usize> {
    let api = api()?;
    // SAFETY: functions without preconditions (they only read the runtime's state).
    let holds_gil = unsafe {
        (api.is_initialized)() != 0 && (api.gil_check)() == 1 && {
            let mine = (api.this_thread_state)();
            !mine.is_null() && mine == (api.running_thread_state)()
        }
    };
    if !holds_gil {
        return None;
    }
    let (mut kind, mut value, mut traceback) = (null_mut(), null_mut(), null_mut());
    // SAFETY: the GIL is held; the three receive (and own) the pending exception, if any.
    unsafe { (api.err_fetch)(&mut kind, &mut value, &mut traceback) };
    let len = read_name(&api, out);
    // SAFETY: the GIL is held; the pending exception's references go back to Python,
    // replacing (and releasing) any error raised here.
    unsafe { (api.err_restore)(kind, value, traceback) };
    len
}

/// A reference of ours, released when dropped. Every one lives inside [`read_name`], which
/// runs only once [`thread_name`] has checked that this thread holds the GIL.
struct Owned<'a> {
    api: &'a Api,
    obj: Obj,
}

impl<'a> Owned<'a> {
    /// Takes `obj` (a new reference or NULL).
    fn new(api: &'a Api, obj: Obj) -> Option<Owned<'a>> {
        (!obj.is_null()).then_some(Owned { api, obj })
    }

    /// Takes a reference to `obj` (a borrowed reference or NULL).
    fn borrowed(api: &'a Api, obj: Obj) -> Option<Owned<'a>> {
        // SAFETY: the GIL is held (see Owned); obj is live.
        (!obj.is_null()).then(|| unsafe { (api.incref)(obj) });
        Owned::new(api, obj)
    }

    /// The interned `str` `text`.
    fn text(api: &'a Api, text: &CStr) -> Option<Owned<'a>> {
        // SAFETY: the GIL is held.
        Owned::new(api, unsafe { (api.interned)(text.as_ptr()) })
    }

    /// `self.name`, read generically.
    fn attr(&self, name: &CStr) -> Option<Owned<'a>> {
        let name = Owned::text(self.api, name)?;
        // SAFETY: the GIL is held; both are live objects.
        Owned::new(self.api, unsafe { (self.api.getattr)(self.obj, name.obj) })
    }
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        // SAFETY: the GIL is held and this reference is ours.
        unsafe { (self.api.decref)(self.obj) }
    }
}

/// `sys.modules["threading"]._active[get_ident()]._name` into `out`. The GIL is held.
fn read_name(api: &Api, out: &mut [u8]) -> Option<usize> {
    // SAFETY: the GIL is held; borrowed references, held while used.
    let threading = Owned::borrowed(api, unsafe {
        let modules = (api.sys_get)(c"modules".as_ptr());
        if modules.is_null() {
            return None;
        }
        (api.dict_get_string)(modules, c"threading".as_ptr())
    })?;
    let active = threading.attr(c"_active")?;
    // SAFETY: the GIL is held.
    let ident = Owned::new(api, unsafe { (api.long)((api.thread_ident)()) })?;
    // SAFETY: the GIL is held; both are live objects; a borrowed reference, held while used.
    let thread = Owned::borrowed(api, unsafe { (api.dict_get)(active.obj, ident.obj) })?;
    let name = thread.attr(c"_name")?;
    let mut len: isize = 0;
    // SAFETY: the GIL is held; name is live (the buffer lives as long as it).
    let utf8 = unsafe { (api.utf8)(name.obj, &mut len) };
    if utf8.is_null() || len < 0 {
        return None;
    }
    let len = (len as usize).min(out.len());
    // SAFETY: utf8 holds at least len bytes; out is a distinct buffer of at least len bytes.
    unsafe { core::ptr::copy_nonoverlapping(utf8.cast::<u8>(), out.as_mut_ptr(), len) };
    Some(len)
}
