-- lectures: one row per analysed video (a lecture), from its latest 'done' run, and the table macro
-- lectures_in(course, date_from, date_to, video): those a report's parameters select. Registered by
-- fer_stream.reports.connect before any report runs; every report reads the lectures from here.
--
-- A video analysed again with another configuration keeps both sets of record files
-- (<video_id>_<config_hash>.parquet); connect() keeps the faces/frames files of the run chosen here
-- only, so no face is counted twice. A video without a done run (failed, or killed before its
-- videos/ row was written) has no lecture row: its records, if any, are not complete.
create or replace temp view lectures as

with

done as (
    select
        *,
        row_number() over (
            partition by video_id order by finished_at desc nulls last, run_id desc
        ) as nth_latest
    from videos
    where status = 'done'
),

final as (
    select
        video_id,
        course,
        lecture_date,
        path,
        config_hash,
        sample_fps,
        -- seconds of video that one sampled frame stands for: every time in this package is
        -- (number of sampled frames) x frame_s
        1.0 / sample_fps as frame_s,
        duration_s,
        lost_s,
        corrupt_packets,
        model_version,
        -- the audio's outcome: 'done' (speech/ holds its stretches of speech), 'no_audio',
        -- 'audio_error', 'off'; null in records written before speech was analysed. Every speech
        -- number of a lecture whose speech is not 'done' is null (unknown, not silence).
        speech,
        finished_at
    from done
    where nth_latest = 1
)

select * from final;

-- The lectures a report is about: each argument null = no restriction; dates inclusive; video is a
-- video_id or a prefix of one (the 8 characters in per-lecture student ids).
create or replace temp macro lectures_in(want_course, want_from, want_to, want_video) as table
    select *
    from lectures
    where (want_course is null or course = want_course)
        and (want_from is null or lecture_date >= want_from)
        and (want_to is null or lecture_date <= want_to)
        and (want_video is null or starts_with(video_id, want_video));
