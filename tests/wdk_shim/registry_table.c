/*
 * tests/wdk_shim/registry_table.c - runs driver/LkdhTestDriver/Config.c's LkdhSettingsRead against
 * a registry table given on the command line, and prints the settings it produced as JSON.
 *
 *   registry_table [--no-key] [NAME=sz:TEXT | NAME=dword:N | NAME=binary:HEX]...
 *
 * The WDF methods below behave as their documentation says (MicrosoftDocs windows-driver-docs-ddi
 * wdfregistry pages): a missing value is STATUS_OBJECT_NAME_NOT_FOUND; a value of another type is
 * STATUS_OBJECT_TYPE_MISMATCH; a string longer than Value->MaximumLength is STATUS_BUFFER_OVERFLOW;
 * REG_SZ data keeps its terminating NUL in the length (as RegSetValueEx stores it). RtlGUIDFromString
 * accepts only "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (wdm RtlGUIDFromString). Test code only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../driver/LkdhTestDriver/LkdhConfig.h"

enum { MAX_VALUES = 16, MAX_TEXT = 128 };
typedef struct {
    WCHAR name[64];
    int type; /* 1 REG_SZ, 4 REG_DWORD, 3 REG_BINARY */
    WCHAR text[MAX_TEXT];
    size_t textBytes; /* including the NUL */
    ULONG dword;
} ENTRY;

static ENTRY table[MAX_VALUES];
static int entries;
static int keyPresent = 1;
static int keyClosed;

static void widen(WCHAR* out, size_t capacity, const char* in) {
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < capacity; i++) {
        out[i] = (WCHAR)(unsigned char)in[i];
    }
    out[i] = 0;
}

static size_t wlen(const WCHAR* s) {
    size_t n = 0;
    while (s[n] != 0) {
        n++;
    }
    return n;
}

static ENTRY* find(PCUNICODE_STRING name) {
    for (int i = 0; i < entries; i++) {
        size_t n = wlen(table[i].name);
        if (n * sizeof(WCHAR) == name->Length && memcmp(table[i].name, name->Buffer, name->Length) == 0) {
            return &table[i];
        }
    }
    return NULL;
}

VOID RtlInitUnicodeString(UNICODE_STRING* Destination, PCWSTR Source) {
    size_t n = wlen(Source);
    Destination->Buffer = (WCHAR*)Source;
    Destination->Length = (USHORT)(n * sizeof(WCHAR));
    Destination->MaximumLength = (USHORT)((n + 1) * sizeof(WCHAR));
}

static int hexDigit(WCHAR c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hexRun(const WCHAR* s, int count, uint64_t* value) {
    *value = 0;
    for (int i = 0; i < count; i++) {
        int d = hexDigit(s[i]);
        if (d < 0) return 0;
        *value = (*value << 4) | (uint64_t)d;
    }
    return 1;
}

NTSTATUS RtlGUIDFromString(PCUNICODE_STRING GuidString, GUID* Guid) {
    const WCHAR* s = GuidString->Buffer;
    uint64_t v;
    if (GuidString->Length != 38 * sizeof(WCHAR) || s[0] != '{' || s[37] != '}' || s[9] != '-' ||
        s[14] != '-' || s[19] != '-' || s[24] != '-') {
        return STATUS_INVALID_PARAMETER;
    }
    if (!hexRun(s + 1, 8, &v)) return STATUS_INVALID_PARAMETER;
    Guid->Data1 = (uint32_t)v;
    if (!hexRun(s + 10, 4, &v)) return STATUS_INVALID_PARAMETER;
    Guid->Data2 = (uint16_t)v;
    if (!hexRun(s + 15, 4, &v)) return STATUS_INVALID_PARAMETER;
    Guid->Data3 = (uint16_t)v;
    for (int i = 0; i < 8; i++) {
        const WCHAR* at = (i < 2) ? s + 20 + 2 * i : s + 25 + 2 * (i - 2);
        if (!hexRun(at, 2, &v)) return STATUS_INVALID_PARAMETER;
        Guid->Data4[i] = (uint8_t)v;
    }
    return STATUS_SUCCESS;
}

NTSTATUS WdfDeviceOpenRegistryKey(WDFDEVICE Device, ULONG DeviceInstanceKeyType, ACCESS_MASK DesiredAccess,
                                  PWDF_OBJECT_ATTRIBUTES KeyAttributes, WDFKEY* Key) {
    (void)Device;
    (void)KeyAttributes;
    if (DeviceInstanceKeyType != PLUGPLAY_REGKEY_DEVICE || DesiredAccess != KEY_READ) {
        fprintf(stderr, "shim: unexpected key type %u / access 0x%x\n", DeviceInstanceKeyType, DesiredAccess);
        exit(3);
    }
    if (!keyPresent) {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    *Key = (WDFKEY)table;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRegistryQueryUnicodeString(WDFKEY Key, PCUNICODE_STRING ValueName, USHORT* ValueByteLength,
                                       UNICODE_STRING* Value) {
    ENTRY* entry = find(ValueName);
    (void)Key;
    if (entry == NULL) return STATUS_OBJECT_NAME_NOT_FOUND;
    if (entry->type != 1) return STATUS_OBJECT_TYPE_MISMATCH;
    if (ValueByteLength != NULL) *ValueByteLength = (USHORT)entry->textBytes;
    if (entry->textBytes > Value->MaximumLength) return STATUS_BUFFER_OVERFLOW;
    memcpy(Value->Buffer, entry->text, entry->textBytes);
    Value->Length = (USHORT)entry->textBytes;
    return STATUS_SUCCESS;
}

NTSTATUS WdfRegistryQueryULong(WDFKEY Key, PCUNICODE_STRING ValueName, ULONG* Value) {
    ENTRY* entry = find(ValueName);
    (void)Key;
    if (entry == NULL) return STATUS_OBJECT_NAME_NOT_FOUND;
    if (entry->type != 4) return STATUS_OBJECT_TYPE_MISMATCH;
    *Value = entry->dword;
    return STATUS_SUCCESS;
}

VOID WdfRegistryClose(WDFKEY Key) {
    (void)Key;
    keyClosed++;
}

static void printGuid(const char* name, const GUID* g) {
    printf("\"%s\":\"%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x\",", name, g->Data1, g->Data2, g->Data3,
           g->Data4[0], g->Data4[1], g->Data4[2], g->Data4[3], g->Data4[4], g->Data4[5], g->Data4[6], g->Data4[7]);
}

int main(int argc, char** argv) {
    LKDH_MODULE_SETTINGS settings;
    for (int i = 1; i < argc; i++) {
        char* spec = argv[i];
        char* eq = strchr(spec, '=');
        ENTRY* entry;
        if (strcmp(spec, "--no-key") == 0) {
            keyPresent = 0;
            continue;
        }
        if (eq == NULL || entries == MAX_VALUES) return 2;
        *eq = '\0';
        entry = &table[entries++];
        widen(entry->name, ARRAYSIZE(entry->name), spec);
        if (strncmp(eq + 1, "sz:", 3) == 0) {
            entry->type = 1;
            widen(entry->text, MAX_TEXT, eq + 4);
            entry->textBytes = (wlen(entry->text) + 1) * sizeof(WCHAR);
        } else if (strncmp(eq + 1, "dword:", 6) == 0) {
            entry->type = 4;
            entry->dword = (ULONG)strtoul(eq + 7, NULL, 0);
        } else {
            entry->type = 3;
        }
    }
    memset(&settings, 0xA5, sizeof(settings)); /* LkdhSettingsRead must set every field */
    LkdhSettingsRead((WDFDEVICE)0, &settings);
    printf("{\"report_type\":\"");
    for (size_t i = 0; settings.ReportType[i] != 0 && i < ARRAYSIZE(settings.ReportType); i++) {
        putchar((int)settings.ReportType[i]);
    }
    printf("\",");
    printGuid("guid_device_interface", &settings.GuidDeviceInterface);
    printGuid("guid_secondary_data", &settings.GuidSecondaryData);
    printf("\"include_dmf_data\":%u,\"from_registry\":%u,\"rejected\":%u,\"key_status\":%u,\"key_closed\":%d}\n",
           (unsigned)settings.IncludeDmfDataInBugCheckTriageDump, (unsigned)settings.FromRegistry,
           (unsigned)settings.Rejected, (unsigned)(uint32_t)settings.KeyStatus, keyClosed);
    return 0;
}
