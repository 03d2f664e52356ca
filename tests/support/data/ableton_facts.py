"""Facts observed in Ableton Live presets that Live itself saved, for tests/unit/test_ableton.py.

Only element names, their order, attribute names and a few values are kept here: no file and no code
from the sources. Where each fact was read:

* [R12]  ben-juodvalkis/Ableton-Device-Creator, ``templates/sampler-rack.adg`` — an Instrument Rack with one
         Sampler chain, saved by "Ableton Live 12.1.5" (MinorVersion 12.0_12120).
* [S12]  same repository, ``templates/simpler-template.adv`` — a Simpler device preset saved by
         "Ableton Live 12.2b11" (MinorVersion 12.0_12203); its MultiSamplePart is Sampler's.
* [M12]  same repository, ``templates/Mini Template.adg`` — nested racks with 190 Sampler zones,
         "Ableton Live 12.3b14".
* [D12]  same repository, ``Donor Sampler Rack.xml`` — nested Instrument Racks, "Ableton Live 12.2b16".
* [C11], [C12]  git-moss/ConvertWithMoss, ``templates/adv/ADV11-Template.xml`` / ``ADV12-Template.xml`` —
         Sampler presets derived from Live 11.3.22 / 12.2.7 saves; the only schema difference between them
         is the round-robin block of ``MultiSampleMap`` (Live 12 only; ConvertWithMoss's notes say a file
         with it "cannot be loaded in Ableton 11").
* [N]    notes of a public project that diffed Live 12.4 saves one change at a time (chain-select zones are
         absolute 0..127 bounds with Min <= CrossfadeMin <= CrossfadeMax <= Max; a macro mapping is a
         ``KeyMidi`` child placed between ``LomId`` and ``Manual`` with Channel 16 and NoteOrController =
         macro index; sibling ``Id``s must be unique or Live refuses the preset; the top-level
         GroupDevicePreset carries no Id, a rack nested in a chain's DevicePresets does; devices may be
         partial, Live fills in absent parameters).
"""

# Root element attributes per Live version ([C11] [C12]).
ROOT = {
    11: {"MajorVersion": "5", "MinorVersion": "11.0_11300", "SchemaChangeCount": "3",
         "Creator": "Ableton Live 11.3.22"},
    12: {"MajorVersion": "5", "MinorVersion": "12.0_12203", "SchemaChangeCount": "3",
         "Creator": "Ableton Live 12.2.7"},
}
ROOT_ATTRIBUTE_ORDER = ["MajorVersion", "MinorVersion", "SchemaChangeCount", "Creator", "Revision"]

# A device preset (.adv) holds the device element directly under <Ableton>, without an Id ([S12] [C12]).
ADV_ROOT_CHILD = "MultiSampler"

# Ordered children of <MultiSampler> as Live 12 writes them ([R12]); [C11]/[C12] lack the two marked 12-only.
MULTISAMPLER_CHILDREN_12 = [
    "LomId", "LomIdView", "IsExpanded", "BreakoutIsExpanded", "On", "ModulationSourceCount",
    "ParametersListWrapper", "Pointee", "LastSelectedTimeableIndex", "LastSelectedClipEnvelopeIndex",
    "LastPresetRef", "LockedScripts", "IsFolded", "ShouldShowPresetName", "UserName", "Annotation",
    "SourceContext", "MpePitchBendUsesTuning", "OverwriteProtectionNumber", "Player", "Pitch", "Filter",
    "Shaper", "VolumeAndPan", "AuxEnv", "Lfo", "AuxLfos.0", "AuxLfos.1", "KeyDst", "VelDst", "RelVelDst",
    "MidiCtrl.0", "MidiCtrl.1", "MidiCtrl.2", "MidiCtrl.3", "MidiCtrl.4", "MidiCtrl.5", "Globals",
    "ViewSettings", "SimplerSlicing",
]
MULTISAMPLER_ONLY_12 = {"BreakoutIsExpanded", "MpePitchBendUsesTuning"}

# Ordered children of Player/MultiSampleMap ([R12] [S12] [M12]); the last four are Live 12 only ([C11]).
MULTISAMPLEMAP_CHILDREN_12 = ["SampleParts", "LoadInRam", "LayerCrossfade", "SourceContext", "RoundRobin",
                              "RoundRobinMode", "RoundRobinResetPeriod", "RoundRobinRandomSeed"]
MULTISAMPLEMAP_ONLY_12 = {"RoundRobin", "RoundRobinMode", "RoundRobinResetPeriod", "RoundRobinRandomSeed"}
ROUND_ROBIN_MODE_FORWARD = "0"   # ConvertWithMoss's reader: 0 forward, 1 backwards, 2 other, 3 random

# Ordered children of <MultiSamplePart> ([S12] [M12]; [C12] has the same list without the two marked).
MULTISAMPLEPART_CHILDREN = [
    "LomId", "Name", "Selection", "IsActive", "Solo", "KeyRange", "VelocityRange", "SelectorRange",
    "RootKey", "Detune", "TuneScale", "Panorama", "Volume", "Link", "SampleStart", "SampleEnd",
    "SustainLoop", "ReleaseLoop", "SampleRef", "SlicingThreshold", "SlicingBeatGrid", "SlicingRegions",
    "SlicingStyle", "SampleWarpProperties", "InitialSlicePointsFromOnsets", "SlicePoints",
    "ManualSlicePoints", "BeatSlicePoints", "RegionSlicePoints", "UseDynamicBeatSlices",
    "UseDynamicRegionSlices", "AreSlicesFromOnsetsEditable",
]
MULTISAMPLEPART_OPTIONAL = {"InitialSlicePointsFromOnsets", "AreSlicesFromOnsetsEditable"}
MULTISAMPLEPART_ATTRIBUTES = {"Id", "HasImportedSlicePoints", "NeedsAnalysisData",
                              "InitUpdateAreSlicesFromOnsetsEditableAfterRead"}   # the last: Live 12 only
RANGE_CHILDREN = ["Min", "Max", "CrossfadeMin", "CrossfadeMax"]          # KeyRange, VelocityRange, ...
LOOP_CHILDREN = ["Start", "End", "Mode", "Crossfade", "Detune"]          # SustainLoop, ReleaseLoop
FILEREF_CHILDREN = ["RelativePathType", "RelativePath", "Path", "Type", "LivePackName", "LivePackId",
                    "OriginalFileSize", "OriginalCrc"]
SAMPLEREF_CHILDREN = ["FileRef", "LastModDate", "SourceContext", "SampleUsageHint", "DefaultDuration",
                      "DefaultSampleRate", "SamplesToAutoWarp"]
SAMPLEREF_ONLY_12 = {"SamplesToAutoWarp"}       # 12.2b11 and 12.3b14 saves have it; the Live 11 zone does not
# In [S12] and [M12]: SampleEnd = SustainLoop/End = ReleaseLoop/End = frames - 1 (inclusive last frame),
# DefaultDuration = frames, ReleaseLoop/Mode = 3 for a fresh zone; sample FileRefs carry Type 2.
SAMPLE_FILEREF_TYPE = "2"
RELATIVE_PATH_TYPE_DOCUMENT = "1"   # [M12]: a sample outside any library, "../.."-style relative path

# ------------------------------------------------------------------------------ sample file references
# [K12] ``templates/Kick Racks/Kick 01.adg`` (12.1.5, macOS) and alienmind/patchbay ``racks/*.adg`` and
# ``donors/skeleton_drum.adg`` (12.2-12.4, Windows): every sample FileRef with RelativePathType 1 holds the
# path relative to the preset's folder ("../../Drums/Kick/x.wav") AND the absolute path of the same file in
# ``Path``, with '/' separators on Windows too ("C:/Music/.../x.wav", "/Users/Shared/.../x.aiff");
# OriginalFileSize is the file's size in bytes (0 seen only beside OriginalCrc 0), and the SampleRef's
# LastModDate a Unix time in seconds (e.g. 1250469785, 1515418307), not 0.
FILEREF_ABSOLUTE_PATH_WITH_RELATIVE = True
FILEREF_SEPARATOR = "/"
# How a moved folder still finds its samples: git-moss/ConvertWithMoss ``AbletonDetector`` (its comment on
# sample lookup) resolves the relative path against the preset's folder and then tries the absolute Path;
# Live's manual (chapter "Managing Files and Sets", "Live Projects") has Sets find their samples after a
# whole project folder is moved, which is the same relative rule. Not checkable without Live.

# ------------------------------------------------------------------------- Sampler loop release modes
# ReleaseLoop/Mode ("Release Mode" in Sampler's Sample tab) -- where the meaning was read:
# * git-moss/ConvertWithMoss ``AbletonDetector``: Mode 3 is "Off"; a loop with Mode < 3 is read as "loop until
#   release" (a sustain loop); ``AbletonCreator`` writes 0 for a loop-until-release loop, 3 otherwise.
# * git-moss/ConvertWithMoss issue #317 / PR #318 (Aug 2026): Sampler presets a user saved in Live with the
#   Release Mode "->|" (loop while held, then play the rest of the sample) and "OFF" (keep looping in the
#   release) were read by that detector as sustain and continuous loops respectively; only the OP-XY side was
#   inverted by the fix, the Ableton reading was confirmed.
# * [S12] [M12] [K12]: every fresh zone without a loop (SustainLoop Mode 0) has ReleaseLoop Mode 3 (Live's
#   default "OFF").
LOOP_RELEASE_PLAY_ON = "0"     # "->|": sfz loop_sustain, SF2 sampleModes 3
LOOP_RELEASE_OFF = "3"         # "OFF": sfz loop_continuous, SF2 sampleModes 1; also every unlooped zone
SUSTAIN_LOOP_FORWARD = "1"
SUSTAIN_LOOP_OFF = "0"

# Amp envelope, VolumeAndPan/Envelope, ordered ([R12] [C12]); times are milliseconds.
ENVELOPE_CHILDREN = ["AttackTime", "AttackLevel", "AttackSlope", "DecayTime", "DecayLevel", "DecaySlope",
                     "SustainLevel", "ReleaseTime", "ReleaseLevel", "ReleaseSlope", "LoopMode", "LoopTime",
                     "RepeatTime", "TimeVelScale", "CurrentOverlay"]
ENVELOPE_RANGES = {"AttackTime": (0.1000000015, 20000.0), "DecayTime": (1.0, 60000.0),
                   "SustainLevel": (0.0003162277571, 1.0), "ReleaseTime": (1.0, 60000.0)}
# A continuous parameter: LomId, [KeyMidi when mapped], Manual, MidiControllerRange, AutomationTarget,
# ModulationTarget ([R12] [M12] [N]).
PARAMETER_CHILDREN = ["LomId", "Manual", "MidiControllerRange", "AutomationTarget", "ModulationTarget"]
KEYMIDI_CHILDREN = ["PersistentKeyString", "IsNote", "Channel", "NoteOrController", "LowerRangeNote",
                    "UpperRangeNote", "ControllerMapMode"]
KEYMIDI_CHANNEL = "16"

# Rack preset (.adg) ([R12] [D12]).
ADG_ROOT_CHILD = "GroupDevicePreset"
GROUPDEVICEPRESET_CHILDREN = ["OverwriteProtectionNumber", "Device", "PresetRef", "BranchPresets",
                              "ReturnBranchPresets"]
# Ordered children of <InstrumentGroupDevice> as Live 12 writes them ([R12]; "N" stands for 0..15).
INSTRUMENTGROUPDEVICE_CHILDREN_12 = (
    ["LomId", "LomIdView", "IsExpanded", "BreakoutIsExpanded", "On", "ModulationSourceCount",
     "ParametersListWrapper", "Pointee", "LastSelectedTimeableIndex", "LastSelectedClipEnvelopeIndex",
     "LastPresetRef", "LockedScripts", "IsFolded", "ShouldShowPresetName", "UserName", "Annotation",
     "SourceContext", "MpePitchBendUsesTuning", "OverwriteProtectionNumber", "Branches",
     "IsBranchesListVisible", "IsReturnBranchesListVisible", "IsRangesEditorVisible", "AreDevicesVisible",
     "NumVisibleMacroControls"]
    + [f"MacroControls.{i}" for i in range(16)] + [f"MacroDisplayNames.{i}" for i in range(16)]
    + [f"MacroDefaults.{i}" for i in range(16)] + [f"MacroAnnotations.{i}" for i in range(16)]
    + [f"ForceDisplayGenericValue.{i}" for i in range(16)]
    + ["AreMacroControlsVisible", "IsAutoSelectEnabled", "ChainSelector", "ChainSelectorRelativePosition",
       "ViewsToRestoreWhenUnfolding", "ReturnBranches", "BranchesSplitterProportion",
       "ShowBranchesInSessionMixer"]
    + [f"MacroColor.{i}" for i in range(16)]
    + ["LockId", "LockSeal", "ChainsListWrapper", "ReturnChainsListWrapper", "MacroVariations"]
    + [f"ExcludeMacroFromRandomization.{i}" for i in range(16)]
    + [f"ExcludeMacroFromSnapshots.{i}" for i in range(16)]
    + ["AreMacroVariationsControlsVisible", "ChainSelectorFilterMidiCtrl", "RangeTypeIndex",
       "ShowsZonesInsteadOfNoteNames"]
)
# Ordered children of one chain, <InstrumentBranchPreset Id=n> ([R12] [D12]).
INSTRUMENTBRANCHPRESET_CHILDREN = ["Name", "IsSoloed", "DevicePresets", "MixerPreset", "BranchSelectorRange",
                                   "SessionViewBranchWidth", "DocumentColorIndex", "AutoColored",
                                   "AutoColorScheme", "SourceContext", "ZoneSettings"]
ZONESETTINGS_CHILDREN = ["KeyRange", "VelocityRange"]
# A Sampler in a chain: DevicePresets/AbletonDevicePreset[Id]/{OverwriteProtectionNumber, Device/MultiSampler[Id],
# PresetRef}; a rack in a chain: DevicePresets/GroupDevicePreset[Id] ([R12] [D12]).
ABLETONDEVICEPRESET_CHILDREN = ["OverwriteProtectionNumber", "Device", "PresetRef"]
MIXER_DEVICE = "AudioBranchMixerDevice"
MIXER_VOLUME_RANGE = (0.0003162277571, 1.99526238)
CHAIN_SELECTOR_RANGE = (0.0, 127.0)
MACRO_RANGE = (0.0, 127.0)

# Ordered children of a few Sampler sections and of the chain mixer ([R12]; "12-only" as above).
SUBSECTION_CHILDREN_12 = {
    "Player": ["MultiSampleMap", "LoopModulators", "Reverse", "Snap", "SampleSelector", "SubOsc",
               "InterpolationMode", "UseConstPowCrossfade"],
    "Pitch": ["TransposeKey", "TransposeFine", "PitchLfoAmount", "Envelope", "ScrollPosition"],
    "VolumeAndPan": ["Volume", "VolumeVelScale", "VolumeKeyScale", "VolumeLfoAmount", "Panorama",
                     "PanoramaKeyScale", "PanoramaRnd", "PanoramaLfoAmount", "Envelope", "OneShotEnvelope"],
    "Globals": ["NumVoices", "NumVoicesEnvTimeControl", "RetriggerMode", "ModulationResolution", "SpreadAmount",
                "KeyZoneShift", "PortamentoMode", "PortamentoTime", "PitchBendRange", "MpePitchBendRange",
                "ScrollPosition", "EnvScale", "IsSimpler", "PlaybackMode", "LegacyMode"],
}
AUDIOBRANCHMIXERDEVICE_CHILDREN_12 = [
    "LomId", "LomIdView", "IsExpanded", "BreakoutIsExpanded", "On", "ModulationSourceCount",
    "ParametersListWrapper", "Pointee", "LastSelectedTimeableIndex", "LastSelectedClipEnvelopeIndex",
    "LastPresetRef", "LockedScripts", "IsFolded", "ShouldShowPresetName", "UserName", "Annotation",
    "SourceContext", "MpePitchBendUsesTuning", "OverwriteProtectionNumber", "Speaker", "Volume", "Panorama",
    "SendInfos", "RoutingHelper", "SendsListWrapper",
]

# ------------------------------------------------------------------------------------------ Drum Racks
# Where these were read (element names, order and values only; nothing copied):
# * [K12]  ben-juodvalkis/Ableton-Device-Creator, ``templates/drum-racks/32-Pad MultiVelocity Template.adg``
#          ("Ableton Live 12.3b14", 32 pads each holding a Sampler with 6 velocity layers),
#          ``templates/drum-racks/Sampler Drum Rack/Sampler Drum Rack.adg`` (12.3b14, one Sampler pad),
#          ``templates/Kick Racks/Kick 01.adg`` ("Ableton Live 12.1.5", MinorVersion 12.0_12120, 32 Drum
#          Sampler pads) and ``templates/drum-racks/Drum Rack Template.adg`` ("Ableton Live 12.3").
# * [KD]   the same repository's notes: its 32-pad input rack (ReceivingNote 64..33) answers MIDI 64-95;
#          Live lists pads with ReceivingNote descending (pad 1 first).
# No Drum Rack saved by Live 11 was found; for Live 11 the exporter leaves out the same 12-only elements
# as for Instrument Racks plus the two marked below.

# A Drum Rack preset is the same GroupDevicePreset as an Instrument Rack ([K12]), with DrumGroupDevice in
# Device and DrumBranchPreset chains.
DRUM_DEVICE = "DrumGroupDevice"
DRUM_BRANCH = "DrumBranchPreset"
# DrumGroupDevice's children are InstrumentGroupDevice's (INSTRUMENTGROUPDEVICE_CHILDREN_12, in the same
# order, in 12.1.5 and 12.3) followed by these ([K12]).
DRUMGROUPDEVICE_EXTRA_CHILDREN = ["IsMidiSectionVisible", "AreSendsVisible", "ArePadsVisible",
                                  "PadScrollPosition", "DrumPadsListWrapper", "VisibleDrumPadsListWrapper"]
DRUMGROUPDEVICE_ONLY_12 = {"IsMidiSectionVisible", "AreSendsVisible"}   # (see the note on Live 11 above)
DRUMGROUPDEVICE_CHILDREN_12 = INSTRUMENTGROUPDEVICE_CHILDREN_12 + DRUMGROUPDEVICE_EXTRA_CHILDREN
# A pad: the same children as an Instrument Rack chain; its ZoneSettings are the pad's notes ([K12]).
DRUMBRANCHPRESET_CHILDREN = INSTRUMENTBRANCHPRESET_CHILDREN
DRUM_ZONESETTINGS_CHILDREN = ["ReceivingNote", "SendingNote", "ChokeGroup"]
# Every pad seen sends C3 (MIDI 60) to its devices, has ChokeGroup 0 (none) and BranchSelectorRange 0,0,0,0;
# a pad's Sampler maps its zones over KeyRange 0..127 ([K12]). IsAutoSelectEnabled is true in every Drum Rack.
DRUM_SENDING_NOTE = "60"
DRUM_NO_CHOKE = "0"
DRUM_BRANCH_SELECTOR = ("0", "0", "0", "0")
DRUM_PAD_KEYRANGE = ("0", "127")
# ReceivingNote holds 128 minus the pad's MIDI note ([K12] [KD]): in the 32-pad template the pad with Id 0 has
# ReceivingNote 92 and plays samples named "...-C1-V21-..." (an auto-sampled C1, MIDI 36 in Live's naming);
# Ids count up while ReceivingNote counts down (92..61 = MIDI 36..67, pad 1 first); in Kick 01 alphabetically
# ordered samples sit on Ids 0, 1, 2... with ReceivingNote 64, 63, 62...; [KD] reads 64..33 as MIDI 64..95.
DRUM_RECEIVING_NOTE_BASE = 128
# Pads are listed in ascending MIDI note order, Id 0 the lowest ([K12]).
# PadScrollPosition is a view setting: 12 with pads on MIDI 64..95, 19 with pads on 36..67 ([K12]), i.e. the top
# visible row of four counted from the top of 32 rows (28 - lowest // 4); the one-pad rack saved 28.
DRUM_PAD_SCROLL_TOP = 28
