/*
 * lkdctl - send ONE device IOCTL with bytes the harness packed, print one JSON line.
 *
 * The harness owns the protocol (driver/include/lkdh_control.h, harness/target/windows/protocol.py);
 * this tool only carries bytes, so it never needs to change when an operation is added. It opens
 * the first present device interface of a GUID (SetupDi, which behaves the same on Windows and
 * under wine) or an explicit device path, and calls NtDeviceIoControlFile so that the exact NTSTATUS
 * comes back instead of the lossy Win32 error DeviceIoControl would give.
 *
 * Every run prints exactly one JSON line on stdout:
 *   {"ntstatus":"0xC0000022","information":0,"output":""}           the IOCTL was sent (exit 0)
 *   {"error":"no_device_interface","guid":"...","win32_error":259}  diagnosis (exit code per kind)
 * Exit codes are LKDCTL_EXIT_* in lkdh_control.h. "information" is 0 whenever the status is an
 * error, because the I/O manager does not promise to fill the IO_STATUS_BLOCK then.
 *
 * Pointer patching (--user-data, --pointer) exists for IOCTL_LIVEKERNELDUMP_CREATE, whose input
 * embeds pointers into the caller's own memory (F24, F27): the harness cannot know this process's
 * addresses, so lkdctl copies the user data into its memory and writes its addresses into the input.
 * With --input-length the user data travels on stdin after the input, so nothing large or binary
 * ever goes on the command line. --dry-run prints the final input instead of sending it.
 *
 * `lkdctl --install-device INF HARDWARE_ID` creates the root-enumerated test device instead (devnode.c).
 *
 * Build: see driver/README.md (mingw-w64: make -C driver/lkdctl; MSVC: cl /W4 /WX).
 */

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <winternl.h>
#include <setupapi.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "devnode.h"
#include "lkdh_control.h"

#define MAX_BYTES (64u * 1024u * 1024u)
#define MAX_POINTERS 16u
#define NT_STATUS_PENDING ((NTSTATUS)0x00000103L)

typedef NTSTATUS(NTAPI *NtDeviceIoControlFileFn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG,
                                                 PVOID, ULONG, PVOID, ULONG);

typedef struct {
    uint8_t *data;
    size_t size;
} Bytes;

typedef struct {
    size_t input_offset;     /* where the 8-byte little-endian pointer is written */
    size_t user_data_offset; /* what it points at, inside the user data copy */
} PointerPatch;

typedef struct {
    uint32_t ioctl;
    int have_ioctl;
    GUID guid;
    const wchar_t *guid_text;
    const wchar_t *path;
    Bytes input;
    Bytes user_data;
    PointerPatch pointers[MAX_POINTERS];
    size_t pointer_count;
    uint32_t out_size;
    int read_only;
    int dry_run;
} Options;

static const GUID control_interface_guid = LKDH_CONTROL_INTERFACE_GUID_INIT;

/* ---------------------------------------------------------------------------------------------
 * JSON output: ASCII only, wide strings escaped as \uXXXX UTF-16 units.
 */

static void json_wide_string(const wchar_t *text)
{
    putchar('"');
    for (; *text != L'\0'; text++) {
        unsigned int unit = (unsigned int)*text;
        if (unit == '"' || unit == '\\') {
            printf("\\%c", (char)unit);
        } else if (unit < 0x20 || unit > 0x7E) {
            printf("\\u%04x", unit);
        } else {
            putchar((int)unit);
        }
    }
    putchar('"');
}

void lkdctl_json_wide_string(const wchar_t *text)
{
    json_wide_string(text);
}

static void json_ascii_string(const char *text)
{
    putchar('"');
    for (; *text != '\0'; text++) {
        unsigned char unit = (unsigned char)*text;
        if (unit == '"' || unit == '\\') {
            printf("\\%c", (char)unit);
        } else if (unit < 0x20 || unit > 0x7E) {
            printf("\\u%04x", (unsigned int)unit);
        } else {
            putchar(unit);
        }
    }
    putchar('"');
}

static void json_hex(const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    char chunk[4096];
    size_t used = 0;
    putchar('"');
    for (size_t index = 0; index < size; index++) {
        chunk[used++] = digits[data[index] >> 4];
        chunk[used++] = digits[data[index] & 0x0F];
        if (used == sizeof(chunk)) {
            fwrite(chunk, 1, used, stdout);
            used = 0;
        }
    }
    fwrite(chunk, 1, used, stdout);
    putchar('"');
}

static int fail_bad_arguments(const char *format, ...)
{
    char message[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    fputs("{\"error\":\"bad_arguments\",\"message\":", stdout);
    json_ascii_string(message);
    fputs("}\n", stdout);
    fputs("usage: lkdctl --ioctl CODE [--guid GUID | --path DEVICE_PATH] [--in HEX | --in-file PATH|-]\n"
          "              [--out-size N] [--read-only] [--user-data HEX | --user-data-file PATH|-]\n"
          "              [--input-length N] [--pointer INPUT_OFFSET=USER_DATA_OFFSET]... [--dry-run]\n"
          "       lkdctl --version\n"
          "GUID defaults to the LkdhTestDriver control interface " LKDH_CONTROL_INTERFACE_GUID_TEXT ".\n",
          stderr);
    return LKDCTL_EXIT_BAD_ARGUMENTS;
}

static int fail_internal(const char *message)
{
    fputs("{\"error\":\"internal\",\"message\":", stdout);
    json_ascii_string(message);
    fputs("}\n", stdout);
    return LKDCTL_EXIT_INTERNAL;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing: strict, so a harness bug shows up as a usage error, not as different bytes.
 */

static int hex_value(wchar_t digit)
{
    if (digit >= L'0' && digit <= L'9') {
        return digit - L'0';
    }
    if (digit >= L'a' && digit <= L'f') {
        return digit - L'a' + 10;
    }
    if (digit >= L'A' && digit <= L'F') {
        return digit - L'A' + 10;
    }
    return -1;
}

/* Decimal, or hexadecimal with 0x; no sign, no spaces, no overflow. */
static int parse_u64(const wchar_t *text, uint64_t maximum, uint64_t *value)
{
    uint64_t result = 0;
    unsigned int base = 10;
    if (text[0] == L'0' && (text[1] == L'x' || text[1] == L'X')) {
        base = 16;
        text += 2;
    }
    if (*text == L'\0') {
        return 0;
    }
    for (; *text != L'\0'; text++) {
        int digit = hex_value(*text);
        if (digit < 0 || (unsigned int)digit >= base || result > (UINT64_MAX - (uint64_t)digit) / base) {
            return 0;
        }
        result = result * base + (uint64_t)digit;
    }
    if (result > maximum) {
        return 0;
    }
    *value = result;
    return 1;
}

static int parse_hex_bytes(const wchar_t *text, Bytes *bytes)
{
    size_t length = wcslen(text);
    if (length % 2 != 0 || length / 2 > MAX_BYTES) {
        return 0;
    }
    bytes->size = length / 2;
    bytes->data = (uint8_t *)calloc(bytes->size + 1, 1);
    if (bytes->data == NULL) {
        return 0;
    }
    for (size_t index = 0; index < bytes->size; index++) {
        int high = hex_value(text[2 * index]);
        int low = hex_value(text[2 * index + 1]);
        if (high < 0 || low < 0) {
            return 0;
        }
        bytes->data[index] = (uint8_t)((high << 4) | low);
    }
    return 1;
}

static int parse_hex_field(const wchar_t *text, size_t digits, uint64_t *value)
{
    uint64_t result = 0;
    for (size_t index = 0; index < digits; index++) {
        int digit = hex_value(text[index]);
        if (digit < 0) {
            return 0;
        }
        result = (result << 4) | (uint64_t)digit;
    }
    *value = result;
    return 1;
}

/* 6b1f5a0e-8c1d-4c35-9a57-4c4b44480003, optionally in braces. */
static int parse_guid(const wchar_t *text, GUID *guid)
{
    static const size_t group_starts[] = {0, 9, 14, 19, 24};
    static const size_t group_digits[] = {8, 4, 4, 4, 12};
    uint64_t groups[5];
    size_t length = wcslen(text);
    if (length == 38 && text[0] == L'{' && text[37] == L'}') {
        text++;
        length = 36;
    }
    if (length != 36 || text[8] != L'-' || text[13] != L'-' || text[18] != L'-' || text[23] != L'-') {
        return 0;
    }
    for (size_t group = 0; group < 5; group++) {
        if (!parse_hex_field(text + group_starts[group], group_digits[group], &groups[group])) {
            return 0;
        }
    }
    guid->Data1 = (unsigned long)groups[0];
    guid->Data2 = (unsigned short)groups[1];
    guid->Data3 = (unsigned short)groups[2];
    guid->Data4[0] = (unsigned char)(groups[3] >> 8);
    guid->Data4[1] = (unsigned char)groups[3];
    for (int index = 0; index < 6; index++) {
        guid->Data4[2 + index] = (unsigned char)(groups[4] >> (8 * (5 - index)));
    }
    return 1;
}

static int parse_pointer(const wchar_t *text, PointerPatch *patch)
{
    const wchar_t *separator = wcschr(text, L'=');
    wchar_t left[32];
    uint64_t input_offset;
    uint64_t user_data_offset;
    size_t left_length;
    if (separator == NULL) {
        return 0;
    }
    left_length = (size_t)(separator - text);
    if (left_length == 0 || left_length >= sizeof(left) / sizeof(left[0])) {
        return 0;
    }
    wmemcpy(left, text, left_length);
    left[left_length] = L'\0';
    if (!parse_u64(left, MAX_BYTES, &input_offset) || !parse_u64(separator + 1, MAX_BYTES, &user_data_offset)) {
        return 0;
    }
    patch->input_offset = (size_t)input_offset;
    patch->user_data_offset = (size_t)user_data_offset;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Reading input bytes from a file or stdin ("-").
 */

static DWORD read_all(const wchar_t *path, Bytes *bytes)
{
    HANDLE file;
    int is_stdin = wcscmp(path, L"-") == 0;
    size_t capacity = 4096;
    DWORD error = ERROR_SUCCESS;
    file = is_stdin ? GetStdHandle(STD_INPUT_HANDLE)
                    : CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (file == INVALID_HANDLE_VALUE || file == NULL) {
        return file == NULL ? ERROR_INVALID_HANDLE : GetLastError();
    }
    bytes->size = 0;
    bytes->data = (uint8_t *)malloc(capacity);
    for (;;) {
        DWORD got = 0;
        if (bytes->data == NULL) {
            error = ERROR_NOT_ENOUGH_MEMORY;
            break;
        }
        if (bytes->size == capacity) {
            uint8_t *larger;
            if (capacity >= MAX_BYTES) {
                error = ERROR_FILE_TOO_LARGE;
                break;
            }
            capacity *= 2;
            larger = (uint8_t *)realloc(bytes->data, capacity);
            if (larger == NULL) {
                error = ERROR_NOT_ENOUGH_MEMORY;
                break;
            }
            bytes->data = larger;
        }
        if (!ReadFile(file, bytes->data + bytes->size, (DWORD)(capacity - bytes->size), &got, NULL)) {
            error = GetLastError();
            if (error == ERROR_BROKEN_PIPE) { /* the writer closed its end: that is end of input */
                error = ERROR_SUCCESS;
            }
            break;
        }
        if (got == 0) {
            break;
        }
        bytes->size += got;
    }
    if (!is_stdin) {
        CloseHandle(file);
    }
    return error;
}

static int fail_input_unreadable(const wchar_t *path, DWORD error)
{
    fputs("{\"error\":\"input_unreadable\",\"path\":", stdout);
    json_wide_string(path);
    printf(",\"win32_error\":%lu}\n", (unsigned long)error);
    return LKDCTL_EXIT_INPUT_UNREADABLE;
}

/* ---------------------------------------------------------------------------------------------
 * Command line
 */

static int takes_value(const wchar_t *name)
{
    static const wchar_t *const names[] = {L"--ioctl",     L"--guid",           L"--path",     L"--in",
                                           L"--in-file",   L"--user-data",      L"--user-data-file",
                                           L"--out-size",  L"--pointer",        L"--input-length"};
    for (size_t index = 0; index < sizeof(names) / sizeof(names[0]); index++) {
        if (wcscmp(name, names[index]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* --input-length N: the first N input bytes are the IOCTL input, the rest is the user data, so the
 * harness can send both on stdin (never on the command line, which Windows caps at 8191 chars). */
static int split_user_data(Options *options, uint64_t input_length)
{
    if (options->user_data.data != NULL) {
        return fail_bad_arguments("--input-length and --user-data/--user-data-file exclude each other");
    }
    if (input_length > options->input.size) {
        return fail_bad_arguments("--input-length %u exceeds the %u input bytes", (unsigned int)input_length,
                                  (unsigned int)options->input.size);
    }
    options->user_data.size = options->input.size - (size_t)input_length;
    options->user_data.data = (uint8_t *)malloc(options->user_data.size + 1);
    if (options->user_data.data == NULL) {
        return fail_internal("out of memory for the user data");
    }
    if (options->user_data.size > 0) {
        memcpy(options->user_data.data, options->input.data + input_length, options->user_data.size);
    }
    options->input.size = (size_t)input_length;
    return LKDCTL_EXIT_OK;
}

static int parse_arguments(int argc, wchar_t **argv, Options *options)
{
    uint64_t input_length = UINT64_MAX;
    options->guid = control_interface_guid;
    for (int index = 1; index < argc; index++) {
        const wchar_t *name = argv[index];
        const wchar_t *value = index + 1 < argc ? argv[index + 1] : NULL;
        uint64_t number;
        if (wcscmp(name, L"--read-only") == 0) {
            options->read_only = 1;
            continue;
        }
        if (wcscmp(name, L"--dry-run") == 0) {
            options->dry_run = 1;
            continue;
        }
        if (!takes_value(name)) {
            return fail_bad_arguments("unknown option '%ls'", name);
        }
        if (value == NULL) {
            return fail_bad_arguments("%ls needs a value", name);
        }
        index++;
        if (wcscmp(name, L"--ioctl") == 0) {
            if (!parse_u64(value, UINT32_MAX, &number)) {
                return fail_bad_arguments("--ioctl must be a 32-bit number, got '%ls'", value);
            }
            options->ioctl = (uint32_t)number;
            options->have_ioctl = 1;
        } else if (wcscmp(name, L"--guid") == 0) {
            if (!parse_guid(value, &options->guid)) {
                return fail_bad_arguments("--guid must look like " LKDH_CONTROL_INTERFACE_GUID_TEXT);
            }
            options->guid_text = value;
        } else if (wcscmp(name, L"--path") == 0) {
            options->path = value;
        } else if (wcscmp(name, L"--in") == 0 || wcscmp(name, L"--user-data") == 0) {
            Bytes *target = wcscmp(name, L"--in") == 0 ? &options->input : &options->user_data;
            free(target->data);
            if (!parse_hex_bytes(value, target)) {
                return fail_bad_arguments("%ls must be an even number of hex digits", name);
            }
        } else if (wcscmp(name, L"--in-file") == 0 || wcscmp(name, L"--user-data-file") == 0) {
            Bytes *target = wcscmp(name, L"--in-file") == 0 ? &options->input : &options->user_data;
            DWORD error;
            free(target->data);
            error = read_all(value, target);
            if (error != ERROR_SUCCESS) {
                return fail_input_unreadable(value, error);
            }
        } else if (wcscmp(name, L"--out-size") == 0) {
            if (!parse_u64(value, MAX_BYTES, &number)) {
                return fail_bad_arguments("--out-size must be a number up to %u", MAX_BYTES);
            }
            options->out_size = (uint32_t)number;
        } else if (wcscmp(name, L"--input-length") == 0) {
            if (!parse_u64(value, MAX_BYTES, &input_length)) {
                return fail_bad_arguments("--input-length must be a number up to %u", MAX_BYTES);
            }
        } else if (wcscmp(name, L"--pointer") == 0) {
            if (options->pointer_count == MAX_POINTERS) {
                return fail_bad_arguments("at most %u --pointer options", MAX_POINTERS);
            }
            if (!parse_pointer(value, &options->pointers[options->pointer_count])) {
                return fail_bad_arguments("--pointer must be INPUT_OFFSET=USER_DATA_OFFSET, got '%ls'", value);
            }
            options->pointer_count++;
        }
    }
    if (!options->have_ioctl) {
        return fail_bad_arguments("--ioctl is required");
    }
    if (options->path != NULL && options->guid_text != NULL) {
        return fail_bad_arguments("give --guid or --path, not both");
    }
    if (input_length != UINT64_MAX) {
        int result = split_user_data(options, input_length);
        if (result != LKDCTL_EXIT_OK) {
            return result;
        }
    }
    for (size_t index = 0; index < options->pointer_count; index++) {
        const PointerPatch *patch = &options->pointers[index];
        if (options->user_data.data == NULL) {
            return fail_bad_arguments("--pointer needs --user-data or --user-data-file");
        }
        if (patch->input_offset + 8 > options->input.size || patch->user_data_offset > options->user_data.size) {
            return fail_bad_arguments("--pointer %u=%u lies outside the input (%u bytes) or user data (%u bytes)",
                                      (unsigned int)patch->input_offset, (unsigned int)patch->user_data_offset,
                                      (unsigned int)options->input.size, (unsigned int)options->user_data.size);
        }
    }
    return LKDCTL_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Device
 */

/* The first present interface of the class, as a newly allocated path; NULL with the Win32 error. */
static wchar_t *first_interface_path(const GUID *guid, DWORD *error)
{
    HDEVINFO devices = SetupDiGetClassDevsW(guid, NULL, NULL, DIGCF_PRESENT | DIGCF_DEVICEINTERFACE);
    SP_DEVICE_INTERFACE_DATA interface_data;
    SP_DEVICE_INTERFACE_DETAIL_DATA_W *detail = NULL;
    DWORD required = 0;
    wchar_t *path = NULL;
    if (devices == INVALID_HANDLE_VALUE) {
        *error = GetLastError();
        return NULL;
    }
    interface_data.cbSize = sizeof(interface_data);
    if (!SetupDiEnumDeviceInterfaces(devices, NULL, guid, 0, &interface_data)) {
        *error = GetLastError(); /* ERROR_NO_MORE_ITEMS: none present */
        goto done;
    }
    SetupDiGetDeviceInterfaceDetailW(devices, &interface_data, NULL, 0, &required, NULL);
    detail = (SP_DEVICE_INTERFACE_DETAIL_DATA_W *)calloc(1, required + sizeof(*detail));
    if (detail == NULL) {
        *error = ERROR_NOT_ENOUGH_MEMORY;
        goto done;
    }
    detail->cbSize = sizeof(*detail);
    if (!SetupDiGetDeviceInterfaceDetailW(devices, &interface_data, detail, required, NULL, NULL)) {
        *error = GetLastError();
        goto done;
    }
    path = _wcsdup(detail->DevicePath);
    *error = path == NULL ? ERROR_NOT_ENOUGH_MEMORY : ERROR_SUCCESS;
done:
    free(detail);
    SetupDiDestroyDeviceInfoList(devices);
    return path;
}

static int open_device(const Options *options, HANDLE *device)
{
    wchar_t *found = NULL;
    const wchar_t *path = options->path;
    DWORD access = options->read_only ? GENERIC_READ : (GENERIC_READ | GENERIC_WRITE);
    if (path == NULL) {
        DWORD error = ERROR_SUCCESS;
        found = first_interface_path(&options->guid, &error);
        if (found == NULL) {
            fputs("{\"error\":\"no_device_interface\",\"guid\":", stdout);
            json_wide_string(options->guid_text != NULL ? options->guid_text : L"" LKDH_CONTROL_INTERFACE_GUID_TEXT);
            printf(",\"win32_error\":%lu}\n", (unsigned long)error);
            return LKDCTL_EXIT_NO_DEVICE_INTERFACE;
        }
        path = found;
    }
    *device = CreateFileW(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
    if (*device == INVALID_HANDLE_VALUE) {
        DWORD error = GetLastError();
        fputs("{\"error\":\"open_failed\",\"path\":", stdout);
        json_wide_string(path);
        printf(",\"read_only\":%s,\"win32_error\":%lu}\n", options->read_only ? "true" : "false",
               (unsigned long)error);
        free(found);
        return LKDCTL_EXIT_OPEN_FAILED;
    }
    free(found);
    return LKDCTL_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The IOCTL
 */

/* Copy the user data into this process and write its addresses into the input (little-endian). */
static int apply_pointers(Options *options, uint64_t *user_data_address)
{
    uint8_t *copy;
    *user_data_address = 0;
    if (options->user_data.data == NULL) {
        return 1;
    }
    copy = (uint8_t *)VirtualAlloc(NULL, options->user_data.size + 1, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, options->user_data.data, options->user_data.size);
    *user_data_address = (uint64_t)(uintptr_t)copy;
    for (size_t index = 0; index < options->pointer_count; index++) {
        uint64_t pointer = *user_data_address + options->pointers[index].user_data_offset;
        for (int byte = 0; byte < 8; byte++) {
            options->input.data[options->pointers[index].input_offset + (size_t)byte] = (uint8_t)(pointer >> (8 * byte));
        }
    }
    return 1;
}

static int print_dry_run(const Options *options, uint64_t user_data_address)
{
    printf("{\"dry_run\":true,\"ioctl\":\"0x%08lX\",\"read_only\":%s,\"out_size\":%lu,\"user_data_address\":\"0x%llX\","
           "\"user_data_size\":%llu,\"input\":",
           (unsigned long)options->ioctl, options->read_only ? "true" : "false", (unsigned long)options->out_size,
           (unsigned long long)user_data_address, (unsigned long long)options->user_data.size);
    json_hex(options->input.data, options->input.size);
    fputs("}\n", stdout);
    return LKDCTL_EXIT_OK;
}

static int send_ioctl(const Options *options, HANDLE device)
{
    NtDeviceIoControlFileFn nt_device_io_control_file;
    IO_STATUS_BLOCK io_status;
    uint8_t *output = NULL;
    NTSTATUS status;
    ULONG_PTR information = 0;
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    /* Through void (*)(void): the one function type every compiler lets a FARPROC become. */
    nt_device_io_control_file =
        ntdll == NULL ? NULL
                      : (NtDeviceIoControlFileFn)(void (*)(void))GetProcAddress(ntdll, "NtDeviceIoControlFile");
    if (nt_device_io_control_file == NULL) {
        return fail_internal("ntdll!NtDeviceIoControlFile not found");
    }
    if (options->out_size > 0) {
        output = (uint8_t *)calloc(options->out_size, 1);
        if (output == NULL) {
            return fail_internal("out of memory for the output buffer");
        }
    }
    memset(&io_status, 0, sizeof(io_status));
    status = nt_device_io_control_file(device, NULL, NULL, NULL, &io_status, options->ioctl,
                                       options->input.size ? options->input.data : NULL, (ULONG)options->input.size,
                                       output, options->out_size);
    if (status == NT_STATUS_PENDING) { /* cannot happen on a synchronous handle, but be exact if it does */
        WaitForSingleObject(device, INFINITE);
        status = io_status.Status;
    }
    if (((uint32_t)status >> 30) != 3u) { /* not an error: IoStatus.Information is meaningful */
        information = io_status.Information;
    }
    printf("{\"ntstatus\":\"0x%08lX\",\"information\":%llu,\"output\":", (unsigned long)(uint32_t)status,
           (unsigned long long)information);
    json_hex(output, information < options->out_size ? (size_t)information : options->out_size);
    fputs("}\n", stdout);
    free(output);
    return LKDCTL_EXIT_OK;
}

int wmain(int argc, wchar_t **argv)
{
    Options options;
    HANDLE device = INVALID_HANDLE_VALUE;
    uint64_t user_data_address;
    int result;
    memset(&options, 0, sizeof(options));
    if (argc == 2 && wcscmp(argv[1], L"--version") == 0) {
        printf("{\"lkdctl\":\"%s\",\"protocol\":%u}\n", LKDCTL_VERSION, (unsigned int)LKDH_PROTOCOL_VERSION);
        return LKDCTL_EXIT_OK;
    }
    if (argc >= 2 && wcscmp(argv[1], L"--install-device") == 0) {
        if (argc != 4) {
            return fail_bad_arguments("--install-device takes exactly INF_PATH HARDWARE_ID");
        }
        return lkdctl_install_device(argv[2], argv[3]);
    }
    result = parse_arguments(argc, argv, &options);
    if (result != LKDCTL_EXIT_OK) {
        return result;
    }
    if (!apply_pointers(&options, &user_data_address)) {
        return fail_internal("VirtualAlloc failed for the user data");
    }
    if (options.dry_run) {
        return print_dry_run(&options, user_data_address);
    }
    result = open_device(&options, &device);
    if (result != LKDCTL_EXIT_OK) {
        return result;
    }
    result = send_ioctl(&options, device);
    CloseHandle(device);
    fflush(stdout);
    return result;
}
